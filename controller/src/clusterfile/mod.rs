//! The Clusterfile (SPEC §2): sealer's multi-document YAML with one `kind: Cluster`
//! (`sealer.io/v2`), any number of `kind: Plugin` hooks and `kind: Config` file overrides.
//!
//! Parsing is strict: an unknown kind or field, a wrong type or an inconsistent value is an
//! error of the form `file:line:col: where: what is wrong; what is expected`, found before
//! any host is contacted. Secrets (`passwd`, `pkPasswd`) may be written as `${ENV_NAME}` and
//! are read from the environment into [`Secret`]s that never print.
//!
//! Reading is bounded (see `bounds`): a regular file of at most [`MAX_BYTES`], UTF-8,
//! nested at most [`MAX_DEPTH`] levels, with at most [`MAX_NODES`] nodes once aliases are
//! expanded; each is checked before the step it protects.

mod bounds;
mod docs;
mod kinds;
mod locate;
mod raw;
mod read;
mod secret;
mod strict;
mod validate;

#[cfg(test)]
mod tests;

use installer_proto::env::Env;
use installer_proto::plan::HookPhase;
use std::io;
use std::path::{Path, PathBuf};

pub use bounds::{MAX_BYTES, MAX_DEPTH, MAX_NODES};
pub use secret::Secret;

/// The role that makes a host a master; master0 is the first IP of the first host with it.
pub const ROLE_MASTER: &str = "master";

pub use installer_proto::plan::{
    DEFAULT_CONTAINER_RUNTIME, DEFAULT_REGISTRY_DOMAIN, DEFAULT_REGISTRY_PORT,
};

/// Why a Clusterfile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterfileError {
    /// The file could not be read.
    #[error("reading Clusterfile {path}: {source}; check the path given with -f")]
    Read {
        /// The path given.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The path names a directory, a FIFO, a device…: refused before it is read, since a
    /// FIFO would block forever and a device may never end.
    #[error(
        "Clusterfile {path}: {what}, not a regular file; expected the path of a Clusterfile with -f"
    )]
    NotAFile {
        /// The path given.
        path: PathBuf,
        /// What it is instead.
        what: &'static str,
    },
    /// The content is invalid at a position.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The Clusterfile's name as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what is expected.
        message: String,
    },
    /// Several problems, each an [`ClusterfileError::Invalid`], in file order.
    #[error("{}", several(errors, *more))]
    Several {
        /// The first [`MAX_ERRORS`] problems.
        errors: Vec<ClusterfileError>,
        /// How many more were found.
        more: usize,
    },
}

/// The lines of several errors, and how to go on.
fn several(errors: &[ClusterfileError], more: usize) -> String {
    let mut out: Vec<String> = errors.iter().map(ToString::to_string).collect();
    if more > 0 {
        out.push(format!(
            "… and {more} more (the first {MAX_ERRORS} are shown)"
        ));
    }
    out.push(format!(
        "{} problems in all; fix them and run again",
        errors.len() + more
    ));
    out.join("\n")
}

/// A validated Clusterfile.
#[derive(Clone, Debug)]
pub struct Clusterfile {
    /// `metadata.name`, checked to be usable as a path component.
    pub name: String,
    /// `spec.image` as written (see [`crate::rootfs::resolve`]).
    pub image: String,
    /// `spec.dataRoot`, default [`installer_proto::plan::DEFAULT_DATA_ROOT`].
    pub data_root: String,
    /// `spec.env`, keys checked; a repeated key keeps its last value.
    pub env: Env,
    /// `spec.containerRuntime.type`: `docker` or `containerd`.
    pub container_runtime: String,
    /// `spec.registry.localRegistry` with defaults applied.
    pub registry: RegistrySpec,
    /// `spec.hostAliases`: `(ip, hostnames)` in file order.
    pub host_aliases: Vec<(String, Vec<String>)>,
    /// One entry per IP (`spec.hosts[].ips` expanded), in file order.
    pub hosts: Vec<HostSpec>,
    /// `kind: Plugin` documents, in file order.
    pub plugins: Vec<PluginSpec>,
    /// `kind: Config` documents, in file order.
    pub configs: Vec<ConfigSpec>,
    /// kubeadm's documents (`InitConfiguration`, `ClusterConfiguration`, …), each as YAML
    /// text, in file order: merged into each host's rendered `etc/kubeadm.yml`.
    pub kubeadm: Vec<String>,
    /// The file the Clusterfile was read from (relative paths in it are relative to its
    /// directory).
    pub source: PathBuf,
    /// What was accepted but deserves a word (an older `apiVersion`, a field this version
    /// does not act on), in file order.
    pub warnings: Vec<ClusterfileWarning>,
    /// Index of master0 in `hosts`; parsing guarantees one exists.
    master0: usize,
}

/// Something in a Clusterfile that was accepted but is worth telling: read differently
/// than written, or not acted on by this version. Shown before anything is contacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterfileWarning {
    /// The file, as given.
    pub file: String,
    /// 1-based line of the node it is about.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What was accepted and what it means.
    pub message: String,
}

impl std::fmt::Display for ClusterfileWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// `spec.registry.localRegistry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrySpec {
    /// Domain, default `sea.hub`.
    pub domain: String,
    /// Port, default 5000.
    pub port: u16,
    /// `true` (default): every master runs the registry; `false`: master0 only.
    pub ha: bool,
    /// `insecure: true`: plain HTTP. Default `false`, as in sealer: TLS.
    pub insecure: bool,
    /// `cert.subjectAltName.ips`: addresses the certificate names besides the registry
    /// hosts'.
    pub cert_ips: Vec<std::net::IpAddr>,
    /// `cert.subjectAltName.dnsNames`: names it carries besides the domain.
    pub cert_dns: Vec<String>,
    /// `username` and `password` (a literal or `${ENV}`): htpasswd auth on the registry,
    /// credentials on every host.
    pub auth: Option<installer_proto::plan::RegistryAuth>,
}

/// One host (one IP of a `spec.hosts[]` entry).
#[derive(Clone, Debug)]
pub struct HostSpec {
    /// The address the controller connects to and the cluster knows the host by.
    pub ip: String,
    /// Roles, in file order, without repeats.
    pub roles: Vec<String>,
    /// SSH settings: the host's own over `spec.ssh` over the defaults.
    pub ssh: SshSpec,
    /// `spec.hosts[].env`, keys checked.
    pub env: Env,
}

impl HostSpec {
    /// Whether the host has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the host is a master.
    pub fn is_master(&self) -> bool {
        self.has_role(ROLE_MASTER)
    }
}

/// How to log in to a host.
#[derive(Clone, Debug)]
pub struct SshSpec {
    /// Login user, default `root`.
    pub user: String,
    /// Port, default 22.
    pub port: u16,
    /// Password (also the sudo password for a non-root user), if given.
    pub passwd: Option<Secret>,
    /// Private key on the controller, `~` expanded and relative paths resolved against the
    /// Clusterfile's directory. `None`: the SSH layer's defaults (`~/.ssh/id_ed25519`,
    /// `~/.ssh/id_rsa`, the ssh-agent).
    pub pk: Option<PathBuf>,
    /// The private key's passphrase, if given.
    pub pk_passwd: Option<Secret>,
}

/// A `kind: Plugin` (`type: SHELL`) hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginSpec {
    /// `metadata.name`; plugins of one phase run in name order.
    pub name: String,
    /// The host phases it runs in.
    pub phases: Vec<HookPhase>,
    /// The roles whose hosts run it.
    pub scope: Vec<String>,
    /// The hosts that run it by IP (sealer v0.8's `on:` may list them).
    pub ips: Vec<String>,
    /// Shell text, run with cwd at the rootfs.
    pub data: String,
}

impl PluginSpec {
    /// Whether `host` is in the plugin's scope: by one of its roles or by its IP.
    pub fn applies_to(&self, host: &HostSpec) -> bool {
        self.scope.iter().any(|s| host.roles.contains(s)) || self.ips.contains(&host.ip)
    }
}

/// A `kind: Config` file override.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigSpec {
    /// `metadata.name`.
    pub name: String,
    /// Path relative to the rootfs, checked to stay inside it.
    pub path: String,
    /// The content (overwrite) or the YAML to merge (merge).
    pub data: String,
    /// How `data` is applied.
    pub strategy: ConfigStrategy,
}

/// `Config.spec.strategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigStrategy {
    /// The file's content becomes `data` (the default).
    Overwrite,
    /// `data` is YAML deep-merged onto the file, `---` section by section.
    Merge,
}

impl Clusterfile {
    /// master0: the first IP of the first host with role `master`.
    pub fn master0(&self) -> &HostSpec {
        // `master0` is set by parsing to the index of a master in `hosts`, and neither
        // field can change afterwards through the public API in a way that breaks it…
        // except by replacing `hosts`, so fall back to searching.
        match self.hosts.get(self.master0) {
            Some(h) if h.is_master() => h,
            _ => self
                .hosts
                .iter()
                .find(|h| h.is_master())
                .unwrap_or_else(|| {
                    // A Clusterfile without a master cannot be produced by `parse`; reaching
                    // this means a caller emptied `hosts` by hand.
                    panic!("Clusterfile {} has no master host", self.source.display())
                }),
        }
    }

    /// The hosts that run the local registry: every master when `ha`, else master0.
    pub fn registry_hosts(&self) -> Vec<&HostSpec> {
        if self.registry.ha {
            self.hosts.iter().filter(|h| h.is_master()).collect()
        } else {
            vec![self.master0()]
        }
    }

    /// Whether the host with `ip` runs the local registry.
    pub fn is_registry_host(&self, ip: &str) -> bool {
        self.registry_hosts().iter().any(|h| h.ip == ip)
    }

    /// The host with `ip`.
    pub fn host(&self, ip: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.ip == ip)
    }

    /// The directory relative paths in the Clusterfile are resolved against.
    pub fn dir(&self) -> &Path {
        base_dir(&self.source)
    }
}

fn base_dir(source: &Path) -> &Path {
    match source.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Reads and validates the Clusterfile at `path`; `${ENV_NAME}` secrets come from the
/// process environment.
pub fn load(path: &Path) -> Result<Clusterfile, ClusterfileError> {
    let text = read::read(path)?;
    parse(&path.display().to_string(), &text)
}

/// Validates Clusterfile `text`; `name` is its path (used in messages and to resolve
/// relative paths). `${ENV_NAME}` secrets come from the process environment.
pub fn parse(name: &str, text: &str) -> Result<Clusterfile, ClusterfileError> {
    parse_with_env(name, text, &|key| std::env::var(key).ok())
}

/// [`parse`] with the environment given as a lookup function (for `${ENV_NAME}` secrets and
/// `~` in key paths), so callers and tests need not change the process environment.
pub fn parse_with_env(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Clusterfile, ClusterfileError> {
    // The bounds come first: the parser's own cost is what they limit.
    read::too_large(name, text.as_bytes())?;
    if let Some((line, column)) = bounds::flow_too_deep(text) {
        return Err(ClusterfileError::Invalid {
            file: name.to_string(),
            line,
            column,
            message: bounds::depth_message(),
        });
    }
    bounds::walk(text).map_err(|failure| failure.into_error(name, text))?;
    validate::build(name, text, env).map_err(|failures| all_errors(name, text, failures))
}

/// How many problems one run reports; past this, the rest are counted.
pub const MAX_ERRORS: usize = 50;

/// Every problem as a positioned error, in file order, each once.
fn all_errors(name: &str, text: &str, failures: Vec<docs::Failure>) -> ClusterfileError {
    let mut errors: Vec<ClusterfileError> = failures
        .into_iter()
        .map(|f| f.into_error(name, text))
        .collect();
    errors.sort_by_key(|e| match e {
        ClusterfileError::Invalid { line, column, .. } => (*line, *column),
        _ => (0, 0),
    });
    // The same problem reached from several places (a cluster-wide secret merged into each
    // host) is said once.
    errors.dedup_by(|a, b| a.to_string() == b.to_string());
    if errors.len() == 1 {
        return errors.remove(0);
    }
    let more = errors.len().saturating_sub(MAX_ERRORS);
    errors.truncate(MAX_ERRORS);
    ClusterfileError::Several { errors, more }
}
