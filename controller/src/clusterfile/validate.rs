//! From the documents as written to a [`Clusterfile`]: defaults, secrets, and every check
//! that needs more than one field (a duplicate IP, a missing master, a plugin scope naming
//! no host's role). Each failure names the node it is about.

use super::docs::{self, Failure, Kind};
use super::kinds::{config, plugin};
use super::locate::{NodePath, Seg};
use super::raw;
use super::secret::{Secret, env_reference};
use super::{
    Clusterfile, DEFAULT_CONTAINER_RUNTIME, DEFAULT_REGISTRY_DOMAIN, DEFAULT_REGISTRY_PORT,
    HostSpec, RegistrySpec, SshSpec,
};
use Seg::{Index as I, Key as K};
use installer_proto::env::{self as penv, Env, EnvError};
use installer_proto::plan;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// Looks up an environment variable of the controller.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses and checks everything; the first problem found is returned.
pub(super) fn build(name: &str, text: &str, env: Lookup) -> Result<Clusterfile, Failure> {
    let kinds = docs::classify(text)?;
    let mut cluster = None;
    let mut plugins = Vec::new();
    let mut configs = Vec::new();
    for (doc, de) in yaml_serde::Deserializer::from_str(text).enumerate() {
        match kinds.get(doc) {
            Some(Kind::Cluster) => cluster = Some((doc, raw::Cluster::deserialize(de)?)),
            Some(Kind::Plugin) => plugins.push((doc, raw::Plugin::deserialize(de)?)),
            Some(Kind::Config) => configs.push((doc, raw::Config::deserialize(de)?)),
            Some(Kind::Empty) | None => {}
        }
    }
    let Some((doc, cluster)) = cluster else {
        // classify() refuses a file without a Cluster; keep a plain error just in case.
        return Err(Failure::at(
            0,
            &[],
            false,
            "no kind: Cluster document",
            "expected one",
        ));
    };
    let source = PathBuf::from(name);
    let ctx = Ctx {
        doc,
        env,
        base_dir: super::base_dir(&source).to_path_buf(),
    };
    let mut cf = ctx.cluster(cluster, source)?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (doc, p) in plugins {
        let spec = plugin(doc, p, &cf.hosts)?;
        if let Some(first) = seen.insert(spec.name.clone(), doc) {
            let name_path = NodePath::value(&[K("metadata"), K("name")]);
            let (line, _) = super::locate::locate(text, first, &name_path);
            return Err(Failure::at(
                doc,
                &[K("metadata"), K("name")],
                false,
                &format!(
                    "plugin {:?} is defined twice (first at line {line})",
                    spec.name
                ),
                "expected unique plugin names",
            ));
        }
        cf.plugins.push(spec);
    }
    for (doc, c) in configs {
        cf.configs.push(config(doc, c)?);
    }
    Ok(cf)
}

/// What the Cluster checks need besides the document.
struct Ctx<'a> {
    doc: usize,
    env: Lookup<'a>,
    base_dir: PathBuf,
}

/// `segs` with `more` appended.
fn at(segs: &[Seg], more: &[Seg]) -> Vec<Seg> {
    [segs, more].concat()
}

const NAME_EXPECTED: &str = "expected 1-63 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit (it becomes part of paths on every host)";

impl Ctx<'_> {
    fn fail(&self, segs: &[Seg], what: &str, expected: &str) -> Failure {
        Failure::at(self.doc, segs, false, what, expected)
    }

    /// A sealer field this version refuses, pointing at its key.
    fn refuse<T>(
        &self,
        field: &Option<T>,
        segs: &[Seg],
        why: &str,
        fix: &str,
    ) -> Result<(), Failure> {
        match field {
            Some(_) => Err(Failure::at(
                self.doc,
                segs,
                true,
                &format!("not supported ({why})"),
                fix,
            )),
            None => Ok(()),
        }
    }

    fn cluster(&self, c: raw::Cluster, source: PathBuf) -> Result<Clusterfile, Failure> {
        let spec = &[K("spec")];
        if plan::check_cluster_name(&c.metadata.name).is_err() {
            return Err(self.fail(
                &[K("metadata"), K("name")],
                &format!("cluster name {:?} is invalid", c.metadata.name),
                NAME_EXPECTED,
            ));
        }
        let s = c.spec;
        if s.image.trim().is_empty() {
            return Err(self.fail(
                &at(spec, &[K("image")]),
                "image is empty",
                "expected a rootfs directory, or a .tar, .tar.gz or .tar.zst of one",
            ));
        }
        let app_why = "applications need a running cluster, and cluster bootstrap is not part of this version";
        self.refuse(&s.cmd, &at(spec, &[K("cmd")]), app_why, "remove it")?;
        self.refuse(
            &s.cmd_args,
            &at(spec, &[K("cmd_args")]),
            app_why,
            "remove it",
        )?;
        self.refuse(
            &s.app_names,
            &at(spec, &[K("appNames")]),
            app_why,
            "remove it",
        )?;
        let env = self.env_list(&s.env, &at(spec, &[K("env")]))?;
        let default_ssh = raw::Ssh::default();
        let cluster_ssh = s.ssh.as_ref().unwrap_or(&default_ssh);
        self.ssh_checks(cluster_ssh, &at(spec, &[K("ssh")]))?;
        let hosts = self.hosts(&s.hosts, cluster_ssh)?;
        let Some(master0) = hosts.iter().position(HostSpec::is_master) else {
            return Err(Failure::at(
                self.doc,
                &at(spec, &[K("hosts")]),
                true,
                "no host has the role master",
                "expected at least one host with roles: [master] (the first one is master0)",
            ));
        };
        let container_runtime = match &s.container_runtime {
            None => DEFAULT_CONTAINER_RUNTIME.to_string(),
            Some(rt) if matches!(rt.kind.as_str(), "docker" | "containerd") => rt.kind.clone(),
            Some(rt) => {
                return Err(self.fail(
                    &at(spec, &[K("containerRuntime"), K("type")]),
                    &format!("container runtime {:?} is not supported", rt.kind),
                    "expected docker or containerd",
                ));
            }
        };
        let registry = self.registry(s.registry.as_ref())?;
        let host_aliases = self.host_aliases(&s.host_aliases)?;
        let data_root = match s.data_root {
            None => plan::DEFAULT_DATA_ROOT.to_string(),
            Some(d) => match plan::check_data_root(&d)
                .and_then(|()| plan::check_cluster_dir(&d, &c.metadata.name))
            {
                Ok(()) => d,
                Err(plan::PlanError::SystemDataRoot { why, .. }) => {
                    return Err(self.fail(
                        &at(spec, &[K("dataRoot")]),
                        &format!("dataRoot {d:?} is refused: {why}"),
                        "expected a directory of installer's own, such as /var/lib/sealer/data (clean must never work among files installer did not create)",
                    ));
                }
                Err(_) => {
                    return Err(self.fail(
                        &at(spec, &[K("dataRoot")]),
                        &format!("dataRoot {d:?} is not a clean absolute path"),
                        "expected an absolute path without '.', '..' or empty components, such as /var/lib/sealer/data",
                    ));
                }
            },
        };
        Ok(Clusterfile {
            name: c.metadata.name,
            image: s.image,
            data_root,
            env,
            container_runtime,
            registry,
            host_aliases,
            hosts,
            plugins: Vec::new(),
            configs: Vec::new(),
            source,
            master0,
        })
    }

    /// `KEY=VALUE` entries: keys checked, `SvcCIDR` checked (built-ins derive from it).
    fn env_list(&self, entries: &[String], segs: &[Seg]) -> Result<Env, Failure> {
        let mut env = Env::new();
        for (i, entry) in entries.iter().enumerate() {
            let here = at(segs, &[I(i)]);
            let (key, value) = penv::parse_entry(entry).map_err(|e| match e {
                EnvError::BadKey { key } => self.fail(
                    &here,
                    &format!("env key {key:?} is invalid"),
                    "expected a key matching [A-Za-z_][A-Za-z0-9_]* so scripts can read it",
                ),
                // Refused here, not at the first script: by then install-bin, templates
                // and /etc/hosts would already have changed the host.
                EnvError::NulInValue { key } => self.fail(
                    &here,
                    &format!("the value of env key {key:?} holds a NUL byte"),
                    "expected a value without NUL (no process environment can carry one, so every script would fail)",
                ),
                _ => self.fail(
                    &here,
                    &format!("{entry:?} is not KEY=VALUE"),
                    "expected KEY=VALUE (the value may be empty)",
                ),
            })?;
            if key == "SvcCIDR" && penv::service_ips(&value).is_err() {
                return Err(self.fail(
                    &here,
                    &format!("SvcCIDR {value:?} is not a usable CIDR"),
                    "expected a CIDR such as 10.96.0.0/12 (KubeSvcIP and DNSSvcIP derive from it)",
                ));
            }
            env.insert(key, value);
        }
        Ok(env)
    }

    /// Checks of one `ssh` mapping that do not depend on merging.
    fn ssh_checks(&self, ssh: &raw::Ssh, segs: &[Seg]) -> Result<(), Failure> {
        self.refuse(
            &ssh.encrypted,
            &at(segs, &[K("encrypted")]),
            "sealer's encrypted passwords use a key published in its source",
            "write the password as ${ENV_NAME} and export ENV_NAME instead",
        )?;
        if let Some(user) = &ssh.user
            && (user.is_empty() || user.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(self.fail(
                &at(segs, &[K("user")]),
                &format!("user {user:?} is not a login name"),
                "expected a user name such as root",
            ));
        }
        Ok(())
    }

    /// The host's `ssh` over the cluster's over the defaults, secrets resolved.
    fn merged_ssh(
        &self,
        cluster: &raw::Ssh,
        host: Option<&raw::Ssh>,
        host_segs: &[Seg],
    ) -> Result<SshSpec, Failure> {
        let cluster_segs = [K("spec"), K("ssh")];
        // Each field comes from the host when it sets it, else from the cluster; errors
        // point at whichever was used.
        let pick = |f: fn(&raw::Ssh) -> Option<&String>, key: &'static str| match host.and_then(f) {
            Some(v) => Some((v.clone(), at(host_segs, &[K(key)]))),
            None => f(cluster).map(|v| (v.clone(), at(&cluster_segs, &[K(key)]))),
        };
        let user = pick(|s| s.user.as_ref(), "user").map_or_else(|| "root".to_string(), |(v, _)| v);
        let port = host
            .and_then(|h| h.port)
            .or(cluster.port)
            .map_or(22, |p| p.0);
        let passwd = match pick(|s| s.passwd.as_ref(), "passwd") {
            Some((v, segs)) => self.secret(&v, &segs)?,
            None => None,
        };
        let pk_passwd = match pick(|s| s.pk_passwd.as_ref(), "pkPasswd") {
            Some((v, segs)) => self.secret(&v, &segs)?,
            None => None,
        };
        let pk = match pick(|s| s.pk.as_ref(), "pk") {
            Some((v, segs)) => self.key_path(&v, &segs)?,
            None => None,
        };
        Ok(SshSpec {
            user,
            port,
            passwd,
            pk,
            pk_passwd,
        })
    }

    /// A literal secret, or `${NAME}` read from the controller's environment.
    fn secret(&self, value: &str, segs: &[Seg]) -> Result<Option<Secret>, Failure> {
        let value = match env_reference(value) {
            Some(name) => (self.env)(name).ok_or_else(|| {
                self.fail(
                    segs,
                    &format!("environment variable {name} is not set"),
                    &format!("expected {name} exported where installer runs (the Clusterfile reads the secret from ${{{name}}})"),
                )
            })?,
            None => value.to_string(),
        };
        Ok((!value.is_empty()).then(|| Secret::new(value)))
    }

    /// A private key path: `~` expanded, relative paths against the Clusterfile's directory.
    fn key_path(&self, value: &str, segs: &[Seg]) -> Result<Option<PathBuf>, Failure> {
        if value.is_empty() {
            return Ok(None);
        }
        let home = || {
            (self.env)("HOME").filter(|h| !h.is_empty()).ok_or_else(|| {
                self.fail(
                    segs,
                    &format!("{value:?} starts with ~ but HOME is not set"),
                    "expected HOME set, or an absolute path",
                )
            })
        };
        let path = match crate::home::rest(value) {
            Some(rest) => crate::home::join(home()?, rest),
            None => self.base_dir.join(value),
        };
        Ok(Some(path))
    }

    fn hosts(&self, hosts: &[raw::Host], cluster_ssh: &raw::Ssh) -> Result<Vec<HostSpec>, Failure> {
        let mut out = Vec::new();
        let mut seen: HashMap<IpAddr, Vec<Seg>> = HashMap::new();
        for (h, host) in hosts.iter().enumerate() {
            let segs = [K("spec"), K("hosts"), I(h)];
            let why =
                "node labels and taints need cluster bootstrap, which is not part of this version";
            self.refuse(&host.labels, &at(&segs, &[K("labels")]), why, "remove it")?;
            self.refuse(&host.taints, &at(&segs, &[K("taints")]), why, "remove it")?;
            if host.ips.is_empty() {
                return Err(self.fail(
                    &at(&segs, &[K("ips")]),
                    "no IPs",
                    "expected at least one IP address",
                ));
            }
            let roles = self.roles(&host.roles, &at(&segs, &[K("roles")]))?;
            if let Some(ssh) = &host.ssh {
                self.ssh_checks(ssh, &at(&segs, &[K("ssh")]))?;
            }
            let ssh = self.merged_ssh(cluster_ssh, host.ssh.as_ref(), &at(&segs, &[K("ssh")]))?;
            let env = self.env_list(&host.env, &at(&segs, &[K("env")]))?;
            for (i, ip) in host.ips.iter().enumerate() {
                let here = at(&segs, &[K("ips"), I(i)]);
                let addr: IpAddr = ip.trim().parse().map_err(|_| {
                    self.fail(
                        &here,
                        &format!("{ip:?} is not an IP address"),
                        "expected an IPv4 or IPv6 address such as 192.168.0.2",
                    )
                })?;
                if let Some(first) = seen.get(&addr) {
                    return Err(self.fail(
                        &here,
                        &format!(
                            "IP {addr} is listed twice (also at {})",
                            super::locate::render(first)
                        ),
                        "expected each host once",
                    ));
                }
                seen.insert(addr, here);
                out.push(HostSpec {
                    ip: addr.to_string(),
                    roles: roles.clone(),
                    ssh: ssh.clone(),
                    env: env.clone(),
                });
            }
        }
        Ok(out)
    }

    fn roles(&self, roles: &[String], segs: &[Seg]) -> Result<Vec<String>, Failure> {
        if roles.is_empty() {
            return Err(self.fail(
                segs,
                "no roles",
                "expected master, node or a custom role name",
            ));
        }
        let mut out: Vec<String> = Vec::new();
        for (i, role) in roles.iter().enumerate() {
            if !is_role_name(role) {
                return Err(self.fail(
                    &at(segs, &[I(i)]),
                    &format!("role {role:?} is invalid"),
                    "expected master, node or a custom name of letters, digits, '-', '_' and '.'",
                ));
            }
            if !out.contains(role) {
                out.push(role.clone());
            }
        }
        Ok(out)
    }

    fn registry(&self, registry: Option<&raw::Registry>) -> Result<RegistrySpec, Failure> {
        let segs = [K("spec"), K("registry")];
        let mut spec = RegistrySpec {
            domain: DEFAULT_REGISTRY_DOMAIN.to_string(),
            port: DEFAULT_REGISTRY_PORT,
            ha: true,
        };
        let Some(registry) = registry else {
            return Ok(spec);
        };
        self.refuse(
            &registry.external_registry,
            &at(&segs, &[K("externalRegistry")]),
            "this version runs the local registry only",
            "remove it",
        )?;
        let Some(local) = &registry.local_registry else {
            return Ok(spec);
        };
        let segs = at(&segs, &[K("localRegistry")]);
        let plain = "the local registry serves plain HTTP without authentication in this version";
        self.refuse(
            &local.username,
            &at(&segs, &[K("username")]),
            plain,
            "remove it",
        )?;
        self.refuse(
            &local.password,
            &at(&segs, &[K("password")]),
            plain,
            "remove it",
        )?;
        self.refuse(&local.cert, &at(&segs, &[K("cert")]), plain, "remove it")?;
        if local.insecure == Some(false) {
            return Err(self.fail(
                &at(&segs, &[K("insecure")]),
                &format!("insecure: false is not supported ({plain})"),
                "set it to true or remove it",
            ));
        }
        if let Some(domain) = &local.domain {
            if !is_host_name(domain) {
                return Err(self.fail(
                    &at(&segs, &[K("domain")]),
                    &format!("domain {domain:?} is not a host name"),
                    "expected a name such as sea.hub (letters, digits, '-' and '.')",
                ));
            }
            spec.domain = domain.clone();
        }
        if let Some(port) = local.port {
            spec.port = port.0;
        }
        if let Some(ha) = local.ha {
            spec.ha = ha;
        }
        Ok(spec)
    }

    fn host_aliases(
        &self,
        aliases: &[raw::HostAlias],
    ) -> Result<Vec<(String, Vec<String>)>, Failure> {
        let mut out = Vec::new();
        for (i, alias) in aliases.iter().enumerate() {
            let segs = [K("spec"), K("hostAliases"), I(i)];
            let ip: IpAddr = alias.ip.trim().parse().map_err(|_| {
                self.fail(
                    &at(&segs, &[K("ip")]),
                    &format!("{:?} is not an IP address", alias.ip),
                    "expected an IPv4 or IPv6 address",
                )
            })?;
            if alias.hostnames.is_empty() {
                return Err(self.fail(
                    &at(&segs, &[K("hostnames")]),
                    "no hostnames",
                    "expected at least one name for this IP",
                ));
            }
            for (j, name) in alias.hostnames.iter().enumerate() {
                if !is_host_name(name) {
                    return Err(self.fail(
                        &at(&segs, &[K("hostnames"), I(j)]),
                        &format!("{name:?} is not a host name"),
                        "expected letters, digits, '-' and '.' (it is written to /etc/hosts)",
                    ));
                }
            }
            out.push((ip.to_string(), alias.hostnames.clone()));
        }
        Ok(out)
    }
}

/// A role usable in a `|`-joined plugin scope.
fn is_role_name(role: &str) -> bool {
    let mut chars = role.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A DNS-style host name (also what `/etc/hosts` can hold safely).
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}
