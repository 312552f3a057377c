//! The Clusterfile documents exactly as written: serde shapes with sealer's field names,
//! every struct closed (`deny_unknown_fields`) so a typo is an error at its line instead of
//! a setting silently ignored. Meaning and cross-field checks live in `validate`.
//!
//! Fields sealer knows but this version does not implement are declared as
//! `Option<IgnoredAny>` so that `validate` can refuse them by name with a reason, or accept
//! them with a warning saying they are not acted on, rather than serde's generic "unknown
//! field".

use serde::de::{self, IgnoredAny, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// `metadata` of every kind. sealer writes `creationTimestamp: null` into every Clusterfile
/// it saves, and Kubernetes-style `labels`/`annotations` are common; none of them means
/// anything on a host, so they are read and set aside.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with name (and optionally creationTimestamp, labels, annotations)"
)]
pub(super) struct Metadata {
    pub name: String,
    #[serde(default)]
    #[allow(dead_code)] // read so that it is accepted; nothing on a host depends on it
    pub creation_timestamp: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)] // as above
    pub labels: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code)] // as above
    pub annotations: Option<IgnoredAny>,
}

/// `kind: Cluster`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a Cluster document: apiVersion, kind, metadata and spec"
)]
pub(super) struct Cluster {
    #[allow(dead_code)] // checked on the probe pass
    pub api_version: String,
    #[allow(dead_code)] // checked on the probe pass
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ClusterSpec,
    /// sealer writes `status: {}` into the Clusterfiles it saves; its content is ignored.
    #[serde(default)]
    #[allow(dead_code)]
    pub status: Option<IgnoredAny>,
}

/// `Cluster.spec`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping of Cluster fields (image, hosts, ssh, env, …)"
)]
pub(super) struct ClusterSpec {
    pub image: String,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub ssh: Option<Ssh>,
    pub hosts: Vec<Host>,
    #[serde(default)]
    pub container_runtime: Option<ContainerRuntime>,
    #[serde(default)]
    pub registry: Option<Registry>,
    #[serde(default)]
    pub host_aliases: Vec<HostAlias>,
    #[serde(default)]
    pub data_root: Option<String>,
    #[serde(default)]
    pub cmd: Option<IgnoredAny>,
    #[serde(default, rename = "cmd_args")]
    pub cmd_args: Option<IgnoredAny>,
    #[serde(default)]
    pub app_names: Option<IgnoredAny>,
}

/// `spec.ssh` and `spec.hosts[].ssh`.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with user, passwd, pk, pkPasswd and port"
)]
pub(super) struct Ssh {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub passwd: Option<String>,
    #[serde(default)]
    pub pk: Option<String>,
    #[serde(default)]
    pub pk_passwd: Option<String>,
    #[serde(default)]
    pub port: Option<Port>,
    #[serde(default)]
    pub encrypted: Option<IgnoredAny>,
}

/// `spec.hosts[]`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with ips, roles and optionally ssh and env"
)]
pub(super) struct Host {
    pub ips: Vec<String>,
    pub roles: Vec<String>,
    #[serde(default)]
    pub ssh: Option<Ssh>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub labels: Option<IgnoredAny>,
    #[serde(default)]
    pub taints: Option<IgnoredAny>,
}

/// `spec.containerRuntime`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with type (docker or containerd)"
)]
pub(super) struct ContainerRuntime {
    #[serde(rename = "type")]
    pub kind: String,
}

/// `spec.registry`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with localRegistry"
)]
pub(super) struct Registry {
    #[serde(default)]
    pub local_registry: Option<LocalRegistry>,
    #[serde(default)]
    pub external_registry: Option<IgnoredAny>,
}

/// `spec.registry.localRegistry`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with domain, port and ha"
)]
pub(super) struct LocalRegistry {
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub port: Option<Port>,
    #[serde(default)]
    pub ha: Option<bool>,
    #[serde(default)]
    pub insecure: Option<bool>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub cert: Option<Cert>,
}

/// `localRegistry.cert` (sealer writes `cert: {}`).
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with subjectAltName"
)]
pub(super) struct Cert {
    #[serde(default)]
    pub subject_alt_name: Option<SubjectAltName>,
}

/// `cert.subjectAltName`: extra names the registry's certificate carries.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with ips and dnsNames"
)]
pub(super) struct SubjectAltName {
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub dns_names: Vec<String>,
}

/// `spec.hostAliases[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with ip and hostnames")]
pub(super) struct HostAlias {
    pub ip: String,
    pub hostnames: Vec<String>,
}

/// `kind: Plugin`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a Plugin document: apiVersion, kind, metadata and spec"
)]
pub(super) struct Plugin {
    #[allow(dead_code)] // checked on the probe pass
    pub api_version: String,
    #[allow(dead_code)] // checked on the probe pass
    pub kind: String,
    pub metadata: Metadata,
    pub spec: PluginSpec,
    /// As on the Cluster: sealer may save a `status`; its content is ignored.
    #[serde(default)]
    #[allow(dead_code)]
    pub status: Option<IgnoredAny>,
}

/// `Plugin.spec`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with type, action, scope and data"
)]
pub(super) struct PluginSpec {
    #[serde(rename = "type")]
    pub kind: String,
    pub action: String,
    #[serde(default)]
    pub scope: Option<String>,
    /// sealer v0.8's name for `scope`.
    #[serde(default)]
    pub on: Option<String>,
    pub data: String,
}

/// `kind: Config`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a Config document: apiVersion, kind, metadata and spec"
)]
pub(super) struct Config {
    #[allow(dead_code)] // checked on the probe pass
    pub api_version: String,
    #[allow(dead_code)] // checked on the probe pass
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ConfigSpec,
    /// As on the Cluster: sealer may save a `status`; its content is ignored.
    #[serde(default)]
    #[allow(dead_code)]
    pub status: Option<IgnoredAny>,
}

/// `Config.spec`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with path, data and strategy"
)]
pub(super) struct ConfigSpec {
    pub path: String,
    pub data: String,
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub process: Option<IgnoredAny>,
    #[serde(default)]
    pub app_name: Option<IgnoredAny>,
}

/// A TCP port written as a number (`22`) or a string (`"22"`, sealer's type).
///
/// Range errors are raised inside the visitor, so the parser attaches the position of the
/// port itself.
#[derive(Debug, Clone, Copy)]
pub(super) struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Port, D::Error> {
        deserializer.deserialize_any(PortVisitor)
    }
}

struct PortVisitor;

const PORT_EXPECTED: &str = "expected a number from 1 to 65535, written as 22 or \"22\"";

impl PortVisitor {
    fn check<E: de::Error>(n: i128) -> Result<Port, E> {
        match u16::try_from(n) {
            Ok(p) if p > 0 => Ok(Port(p)),
            _ => Err(E::custom(format!(
                "port {n} is out of range; {PORT_EXPECTED}"
            ))),
        }
    }
}

impl Visitor<'_> for PortVisitor {
    type Value = Port;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a port number from 1 to 65535")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
        Self::check(i128::from(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
        Self::check(i128::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
        match v.trim().parse::<i128>() {
            Ok(n) => Self::check(n),
            Err(_) => Err(E::custom(format!(
                "port {v:?} is not a number; {PORT_EXPECTED}"
            ))),
        }
    }
}
