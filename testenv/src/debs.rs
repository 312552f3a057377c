//! Debian packages unpacked into the cache: `apt-get download` + `dpkg-deb -x`, no install.
//!
//! The fixture rootfs is made of real binaries from Debian bookworm (containerd, runc,
//! kubectl, docker-registry, …). Nothing is installed on this machine: each package is
//! downloaded and extracted into `<cache>/debs/<name>_<version>_<arch>/`, keyed by the
//! version apt would install now, so a security update of a package gives a new directory
//! and an unchanged one is reused without touching the network.
//!
//! Several processes may ask at once (parallel tests): downloads are serialised by a lock
//! file, and a tree only gets its final name once it is completely extracted, so a
//! directory that exists is always whole.

use crate::cache;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What can go wrong fetching packages.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// A Debian tool is missing.
    #[error(
        "`{tool}` was not found in PATH; testenv takes the fixture's binaries from Debian \
         packages, so it needs apt and dpkg (run it on Debian or Ubuntu)"
    )]
    ToolMissing {
        /// The missing program.
        tool: &'static str,
    },
    /// apt knows no installable version of some packages, even after `apt-get update`.
    #[error(
        "apt has no candidate version of {names} (after `apt-get update`); check that a Debian \
         bookworm source is configured in /etc/apt/sources.list(.d): {detail}"
    )]
    NotFound {
        /// The packages, comma-separated.
        names: String,
        /// What apt-cache said.
        detail: String,
    },
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
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
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DebError {
    let path = path.to_owned();
    move |source| DebError::Io {
        action,
        path,
        source,
    }
}

/// A package version apt would install: what a cache entry is keyed by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Resolved {
    /// Package name, e.g. `containerd`.
    pub name: String,
    /// Debian version, e.g. `1.6.20~ds1-1+deb12u3` (may carry an epoch `1:`).
    pub version: String,
    /// Debian architecture, e.g. `amd64` or `all`.
    pub arch: String,
}

impl Resolved {
    /// The cache directory name: `name_version_arch`, with the epoch colon escaped the way
    /// apt names `.deb` files (`%3a`).
    pub fn dir_name(&self) -> String {
        format!(
            "{}_{}_{}",
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }

    /// `name=version`, as `apt-get download` takes it.
    pub fn apt_spec(&self) -> String {
        format!("{}={}", self.name, self.version)
    }
}

/// An extracted package: its resolved version and the root of its unpacked tree.
#[derive(Clone, Debug)]
pub struct Package {
    /// Which package and version.
    pub resolved: Resolved,
    /// The unpacked tree (`dpkg-deb -x` output): `root/usr/bin/...`.
    pub root: PathBuf,
}

impl Package {
    /// A path inside the unpacked tree, e.g. `pkg.path("usr/bin/ctr")`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }
}

/// Where unpacked packages are kept.
pub fn cache_root() -> PathBuf {
    cache::cache_dir().join("debs")
}

/// The versions apt would install now for `names`, in the order given. Runs `apt-get
/// update` once if apt knows none of them or some of them (missing or stale package lists).
pub fn resolve(names: &[&str]) -> Result<Vec<Resolved>, DebError> {
    match resolve_once(names)? {
        Ok(found) => Ok(found),
        Err(_) => {
            apt_update()?;
            resolve_once(names)?.map_err(|(missing, detail)| DebError::NotFound {
                names: missing.join(", "),
                detail,
            })
        }
    }
}

/// [`resolve`] then [`ensure`]: the unpacked trees of `names`, in the order given.
pub fn fetch(names: &[&str]) -> Result<Vec<Package>, DebError> {
    let resolved = resolve(names)?;
    ensure(&resolved)
}

/// Makes sure each resolved package is unpacked in the cache, downloading what is missing,
/// and returns the trees in the order given. Cheap when everything is there (no network).
pub fn ensure(resolved: &[Resolved]) -> Result<Vec<Package>, DebError> {
    let root = cache_root();
    let package = |r: &Resolved| Package {
        resolved: r.clone(),
        root: root.join(r.dir_name()),
    };
    if resolved.iter().all(|r| root.join(r.dir_name()).is_dir()) {
        return Ok(resolved.iter().map(package).collect());
    }

    fs::create_dir_all(&root).map_err(io_error("create", &root))?;
    let lock_path = root.join(".lock");
    let lock = File::create(&lock_path).map_err(io_error("create", &lock_path))?;
    tracing::debug!(path = %lock_path.display(), "waiting for the package cache lock");
    lock.lock().map_err(io_error("lock", &lock_path))?;

    // Another process may have fetched some while this one waited.
    let missing: Vec<&Resolved> = resolved
        .iter()
        .filter(|r| !root.join(r.dir_name()).is_dir())
        .collect();
    if !missing.is_empty() {
        download_and_extract(&root, &missing)?;
    }
    drop(lock);
    Ok(resolved.iter().map(package).collect())
}

/// Whole-or-nothing: downloads the missing packages into a scratch directory, extracts
/// each to a temporary name and renames it into place. Called with the cache lock held.
fn download_and_extract(root: &Path, missing: &[&Resolved]) -> Result<(), DebError> {
    // Scratch directories left by a process that died while holding the lock.
    if let Ok(entries) = fs::read_dir(root) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".partial-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let scratch = tempfile::Builder::new()
        .prefix(".partial-")
        .tempdir_in(root)
        .map_err(io_error("create a scratch directory in", root))?;
    let specs: Vec<String> = missing.iter().map(|r| r.apt_spec()).collect();
    tracing::info!(packages = %specs.join(" "), "downloading Debian packages");
    if let Err(first) = apt_download(scratch.path(), &specs) {
        // Package lists that are stale name files the mirror no longer has: refresh them and
        // try once more. Other failures (no network) fail the same way again and are
        // reported with apt's own message.
        tracing::warn!(error = %first, "apt-get download failed; running apt-get update and retrying");
        apt_update()?;
        apt_download(scratch.path(), &specs)?;
    }

    let debs = find_debs(scratch.path(), missing)?;
    // dpkg-deb spends its time in xz; extracting in parallel uses every core.
    let results: Vec<Result<(), DebError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = debs
            .iter()
            .map(|(resolved, deb)| {
                let target = scratch.path().join(format!("tree-{}", resolved.name));
                scope.spawn(move || dpkg_extract(deb, &target))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(DebError::Command {
                        command: "dpkg-deb -x".into(),
                        status: "panicked".into(),
                        stderr: String::new(),
                    })
                })
            })
            .collect()
    });
    for result in results {
        result?;
    }
    for (resolved, _) in &debs {
        let tree = scratch.path().join(format!("tree-{}", resolved.name));
        let final_dir = root.join(resolved.dir_name());
        fs::rename(&tree, &final_dir).map_err(io_error("rename into place", &final_dir))?;
    }
    Ok(())
}

/// Pairs each wanted package with the `.deb` apt-get downloaded for it.
fn find_debs<'a>(
    dir: &Path,
    wanted: &[&'a Resolved],
) -> Result<Vec<(&'a Resolved, PathBuf)>, DebError> {
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".deb")
            && let Some((pkg, _)) = stem.split_once('_')
        {
            by_name.insert(pkg.to_owned(), entry.path());
        }
    }
    wanted
        .iter()
        .map(|r| {
            by_name
                .get(&r.name)
                .map(|p| (*r, p.clone()))
                .ok_or_else(|| DebError::Command {
                    command: format!("apt-get download {}", r.apt_spec()),
                    status: "exit status: 0".into(),
                    stderr: format!("no {}_*.deb was written to {}", r.name, dir.display()),
                })
        })
        .collect()
}

type Missing = (Vec<String>, String);

/// One `apt-cache show` round: the resolved packages, or the names apt does not know.
fn resolve_once(names: &[&str]) -> Result<Result<Vec<Resolved>, Missing>, DebError> {
    let mut cmd = Command::new("apt-cache");
    cmd.args(["show", "--no-all-versions"]).args(names);
    let out = output(cmd, "apt-cache")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let found = parse_show(&stdout);
    let mut resolved = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match found.get(*name) {
            Some(r) => resolved.push(r.clone()),
            None => missing.push((*name).to_owned()),
        }
    }
    if missing.is_empty() {
        Ok(Ok(resolved))
    } else {
        Ok(Err((
            missing,
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        )))
    }
}

/// Parses `apt-cache show` stanzas into name → (version, arch). The first stanza of a name
/// wins (with `--no-all-versions` there is one: the candidate).
fn parse_show(text: &str) -> BTreeMap<String, Resolved> {
    let mut found = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let field = |key: &str| {
            stanza.lines().find_map(|line| {
                line.strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .map(|v| v.trim().to_owned())
            })
        };
        if let (Some(name), Some(version), Some(arch)) =
            (field("Package"), field("Version"), field("Architecture"))
        {
            found.entry(name.clone()).or_insert(Resolved {
                name,
                version,
                arch,
            });
        }
    }
    found
}

fn apt_update() -> Result<(), DebError> {
    tracing::info!("running apt-get update (package lists are missing or stale)");
    let mut cmd = Command::new("apt-get");
    cmd.args(["-q", "update"]);
    checked(cmd, "apt-get", "apt-get update").map(drop)
}

fn apt_download(dir: &Path, specs: &[String]) -> Result<(), DebError> {
    let mut cmd = Command::new("apt-get");
    cmd.args(["-q", "download"]).args(specs).current_dir(dir);
    checked(
        cmd,
        "apt-get",
        &format!("apt-get download {}", specs.join(" ")),
    )
    .map(drop)
}

fn dpkg_extract(deb: &Path, target: &Path) -> Result<(), DebError> {
    let mut cmd = Command::new("dpkg-deb");
    cmd.arg("-x").arg(deb).arg(target);
    checked(
        cmd,
        "dpkg-deb",
        &format!("dpkg-deb -x {} {}", deb.display(), target.display()),
    )
    .map(drop)
}

fn output(mut cmd: Command, tool: &'static str) -> Result<std::process::Output, DebError> {
    cmd.stdin(Stdio::null())
        .env("LC_ALL", "C")
        .output()
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                DebError::ToolMissing { tool }
            } else {
                DebError::Io {
                    action: "run",
                    path: tool.into(),
                    source,
                }
            }
        })
}

fn checked(
    cmd: Command,
    tool: &'static str,
    described: &str,
) -> Result<std::process::Output, DebError> {
    let out = output(cmd, tool)?;
    if out.status.success() {
        return Ok(out);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
    Err(DebError::Command {
        command: described.to_owned(),
        status: out.status.to_string(),
        stderr: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_apt_cache_show() {
        let text = "Package: conntrack\nVersion: 1:1.4.7-1+b2\nArchitecture: amd64\n\
                    Depends: libc6\n\nPackage: tini\nSource: tini (0.19.0-1)\n\
                    Version: 0.19.0-1+b3\nArchitecture: amd64\nDescription: x\n";
        let found = parse_show(text);
        assert_eq!(found.len(), 2);
        let conntrack = &found["conntrack"];
        assert_eq!(conntrack.version, "1:1.4.7-1+b2");
        assert_eq!(conntrack.dir_name(), "conntrack_1%3a1.4.7-1+b2_amd64");
        assert_eq!(conntrack.apt_spec(), "conntrack=1:1.4.7-1+b2");
        assert_eq!(found["tini"].version, "0.19.0-1+b3");
    }
}
