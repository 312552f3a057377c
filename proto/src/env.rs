//! The one environment every script, hook and template on a host sees (SPEC §4): built-ins,
//! then the Clusterfile's `spec.env`, then the host's own `env`, later winning.
//!
//! The controller computes it per host from the Clusterfile; the agent computes it itself
//! when run by hand. Both call [`builtins`] and [`merge`], so the two faces cannot disagree.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// An environment: key → value, sorted by key.
pub type Env = BTreeMap<String, String>;

/// Why an env entry or a built-in input is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A `KEY=VALUE` entry without `=`.
    #[error("{entry:?} is not KEY=VALUE; write it as KEY=VALUE (the value may be empty)")]
    NotKeyValue {
        /// The entry as written.
        entry: String,
    },
    /// A key that is not a shell identifier.
    #[error(
        "env key {key:?} is invalid: keys must match [A-Za-z_][A-Za-z0-9_]* so scripts can read them"
    )]
    BadKey {
        /// The key.
        key: String,
    },
    /// A value holding a NUL byte: no process environment can carry one, so the first
    /// script would fail, after earlier steps had already changed the host.
    #[error(
        "the value of env key {key:?} holds a NUL byte, which no process environment can carry; remove it"
    )]
    NulInValue {
        /// The key.
        key: String,
    },
    /// `SvcCIDR` is not a CIDR.
    #[error("SvcCIDR {value:?} is not a CIDR such as 10.96.0.0/12")]
    BadCidr {
        /// The value.
        value: String,
    },
}

/// Whether `key` matches `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether `key` can be an env key at all: sealer accepts any non-empty key, and a key
/// that is not a shell name (`etcd-dir`) reaches templates (`{{ index . "etcd-dir" }}`)
/// but not scripts. Blanks, `=` and control characters are refused: no template or
/// environment could name such a key reliably.
pub fn is_template_key(key: &str) -> bool {
    !key.is_empty()
        && !key
            .chars()
            .any(|c| c == '=' || c.is_whitespace() || c.is_control())
}

/// The env a script gets: the keys that are shell names (SPEC §4). The others are for
/// templates only; a process environment could carry them, but a script could not read them.
pub fn for_scripts(env: &Env) -> Env {
    env.iter()
        .filter(|(k, _)| is_valid_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Splits `KEY=VALUE` at the first `=` and checks the key and the value (a key with a NUL
/// is not a valid key; a value with one is refused too).
pub fn parse_entry(entry: &str) -> Result<(String, String), EnvError> {
    let (key, value) = entry.split_once('=').ok_or_else(|| EnvError::NotKeyValue {
        entry: entry.to_string(),
    })?;
    if !is_valid_key(key) {
        return Err(EnvError::BadKey {
            key: key.to_string(),
        });
    }
    check_value(key, value)?;
    Ok((key.to_string(), value.to_string()))
}

/// Checks that the value of `key` can reach a script's environment: it holds no NUL.
pub fn check_value(key: &str, value: &str) -> Result<(), EnvError> {
    if value.contains('\0') {
        return Err(EnvError::NulInValue {
            key: key.to_string(),
        });
    }
    Ok(())
}

/// Parses a list of `KEY=VALUE` entries; a repeated key keeps its last value (sealer's rule).
pub fn parse_entries<S: AsRef<str>>(entries: &[S]) -> Result<Env, EnvError> {
    let mut env = Env::new();
    for entry in entries {
        let (k, v) = parse_entry(entry.as_ref())?;
        env.insert(k, v);
    }
    Ok(env)
}

/// `kubeadm.k8s.io/v1beta3` from 1.23, `v1beta2` from 1.15, else `v1beta1`. `None` when the
/// version does not parse as `[v]MAJOR.MINOR[.PATCH…]`.
pub fn kubeadm_api_version(kube_version: &str) -> Option<&'static str> {
    let v = kube_version.trim().trim_start_matches('v');
    let mut parts = v.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor_str = parts.next()?;
    let digits: String = minor_str.chars().take_while(char::is_ascii_digit).collect();
    let minor: u32 = digits.parse().ok()?;
    Some(match (major, minor) {
        (m, _) if m > 1 => "kubeadm.k8s.io/v1beta3",
        (1, n) if n >= 23 => "kubeadm.k8s.io/v1beta3",
        (1, n) if n >= 15 => "kubeadm.k8s.io/v1beta2",
        _ => "kubeadm.k8s.io/v1beta1",
    })
}

/// The CRI socket kubeadm and kubelet use for a container runtime type.
pub fn cri_socket(container_runtime: &str) -> Option<&'static str> {
    match container_runtime {
        "docker" => Some("/var/run/dockershim.sock"),
        "containerd" => Some("/run/containerd/containerd.sock"),
        _ => None,
    }
}

/// The pause image named in an `imageList`, re-homed to the local registry: the first image
/// whose last path component is `pause`, e.g. `registry.k8s.io/pause:3.9` with
/// `sea.hub:5000` → `sea.hub:5000/pause:3.9`. Blank lines and `#` comments are skipped and
/// surrounding quotes trimmed, as sealer does.
pub fn pause_image(image_list: &str, registry_url: &str) -> Option<String> {
    image_list
        .lines()
        .map(|l| l.trim().trim_matches(|c| c == '"' || c == '\''))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|image| {
            // Digest references keep their @sha256:…, tags their :tag.
            let last = image.rsplit('/').next()?;
            let name = last.split(['@', ':']).next()?;
            (name == "pause").then(|| format!("{registry_url}/{last}"))
        })
}

/// `KubeSvcIP` (first address of the first CIDR) and `DNSSvcIP` (the tenth), from
/// `SvcCIDR`, which may be a comma-separated dual-stack list.
pub fn service_ips(svc_cidr: &str) -> Result<(String, String), EnvError> {
    let bad = || EnvError::BadCidr {
        value: svc_cidr.to_string(),
    };
    let first = svc_cidr.split(',').next().ok_or_else(bad)?.trim();
    let (addr, prefix) = first.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let prefix: u32 = prefix.parse().map_err(|_| bad())?;
    match addr {
        IpAddr::V4(v4) => {
            if prefix > 30 {
                return Err(bad());
            }
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            let net = u32::from(v4) & mask;
            let host = |n: u32| std::net::Ipv4Addr::from(net + n).to_string();
            Ok((host(1), host(10)))
        }
        IpAddr::V6(v6) => {
            if prefix > 124 {
                return Err(bad());
            }
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            let net = u128::from(v6) & mask;
            let host = |n: u128| std::net::Ipv6Addr::from(net + n).to_string();
            Ok((host(1), host(10)))
        }
    }
}

/// What the built-ins are computed from.
#[derive(Clone, Debug, Default)]
pub struct BuiltinInputs {
    /// The host's address as the cluster knows it.
    pub host_ip: String,
    /// The host's hostname (from its facts).
    pub host_name: String,
    /// master0's address.
    pub master0_ip: String,
    /// `metadata.name`.
    pub cluster_name: String,
    /// The host's arch subtree name (`amd64`/`arm64`).
    pub arch: String,
    /// The merged rootfs's path on the host.
    pub rootfs_dir: String,
    /// Local registry domain (default `sea.hub`).
    pub registry_domain: String,
    /// Local registry port (default 5000).
    pub registry_port: u16,
    /// `docker` or `containerd`.
    pub container_runtime: String,
    /// The Kubernetes version from the rootfs `Metadata`, if any.
    pub kube_version: Option<String>,
    /// The rootfs `imageList` content, if any.
    pub image_list: Option<String>,
}

/// What of the user env (host over cluster) some built-ins derive from.
#[derive(Clone, Copy, Debug, Default)]
pub struct UserOverrides<'a> {
    /// `SvcCIDR`: `KubeSvcIP`/`DNSSvcIP` derive from it.
    pub svc_cidr: Option<&'a str>,
    /// `RegistryURL`: `PauseImage` is re-homed to it, so a user who points the cluster at
    /// another registry gets a pause image from there too.
    pub registry_url: Option<&'a str>,
}

/// The built-in keys of SPEC §4 for one host, given what the user env overrides. Keys that cannot be derived (no
/// Metadata version, no pause image in imageList) are left out, so a template that needs
/// them fails with "key is not defined" instead of rendering something wrong.
pub fn builtins(input: &BuiltinInputs, user: UserOverrides<'_>) -> Result<Env, EnvError> {
    let mut env = Env::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    let registry_url = format!("{}:{}", input.registry_domain, input.registry_port);
    set("HostIP", input.host_ip.clone());
    set("HostName", input.host_name.clone());
    set("Master0IP", input.master0_ip.clone());
    set("ClusterName", input.cluster_name.clone());
    set("Arch", input.arch.clone());
    set("RootfsDir", input.rootfs_dir.clone());
    set("RegistryDomain", input.registry_domain.clone());
    set("RegistryPort", input.registry_port.to_string());
    set("RegistryURL", registry_url.clone());
    // sealer also exports the Local* names; rootfs trees written for it use them.
    set("LocalRegistryDomain", input.registry_domain.clone());
    set("LocalRegistryPort", input.registry_port.to_string());
    set("LocalRegistryURL", registry_url.clone());
    set("ContainerRuntime", input.container_runtime.clone());
    if let Some(socket) = cri_socket(&input.container_runtime) {
        set("CriSocket", socket.to_string());
    }
    if let Some(version) = input.kube_version.as_deref() {
        set("KubeVersion", version.to_string());
        if let Some(api) = kubeadm_api_version(version) {
            set("KubeadmAPIVersion", api.to_string());
        }
    }
    if let Some(pause) = input
        .image_list
        .as_deref()
        .and_then(|list| pause_image(list, user.registry_url.unwrap_or(&registry_url)))
    {
        set("PauseImage", pause);
    }
    if let Some(cidr) = user.svc_cidr {
        let (kube, dns) = service_ips(cidr)?;
        set("KubeSvcIP", kube);
        set("DNSSvcIP", dns);
    }
    Ok(env)
}

/// Merges in SPEC order: built-ins, then cluster env, then host env; later wins.
pub fn merge(builtins: &Env, cluster: &Env, host: &Env) -> Env {
    let mut env = builtins.clone();
    env.extend(cluster.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(host.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// The full environment of one host: `SvcCIDR` and `RegistryURL` are looked up in the user
/// env (host over cluster) before built-ins are derived, then everything is merged.
pub fn host_env(input: &BuiltinInputs, cluster: &Env, host: &Env) -> Result<Env, EnvError> {
    let user = |key: &str| {
        host.get(key)
            .or_else(|| cluster.get(key))
            .map(String::as_str)
    };
    let overrides = UserOverrides {
        svc_cidr: user("SvcCIDR"),
        registry_url: user("RegistryURL"),
    };
    let builtin = builtins(input, overrides)?;
    Ok(merge(&builtin, cluster, host))
}

/// The rootfs `Metadata` file (JSON), e.g. `{"version":"v1.19.8","arch":"amd64"}`.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Metadata {
    /// Kubernetes version.
    #[serde(default)]
    pub version: Option<String>,
    /// Architecture the rootfs was built for.
    #[serde(default)]
    pub arch: Option<String>,
}

impl Metadata {
    /// Parses the Metadata JSON; unknown fields are allowed (sealer added several over time).
    pub fn parse(text: &str) -> Result<Metadata, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests;
