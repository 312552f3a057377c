//! The hosts of a Cluster: IPs, roles, and the SSH settings each host ends up with (its
//! own over the cluster's), with secrets taken from the controller's environment.

use super::{Ctx, at};
use crate::clusterfile::docs::Failure;
use crate::clusterfile::locate::Seg;
use crate::clusterfile::raw;
use crate::clusterfile::secret::{Secret, env_reference};
use crate::clusterfile::{HostSpec, SshSpec};
use Seg::{Index as I, Key as K};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

impl Ctx<'_> {
    /// Checks of one `ssh` mapping that do not depend on merging.
    pub(super) fn ssh_checks(&self, ssh: &raw::Ssh, segs: &[Seg]) -> Result<(), Failure> {
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
    pub(super) fn merged_ssh(
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
    pub(super) fn secret(&self, value: &str, segs: &[Seg]) -> Result<Option<Secret>, Failure> {
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
    pub(super) fn key_path(&self, value: &str, segs: &[Seg]) -> Result<Option<PathBuf>, Failure> {
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

    /// The hosts, one per IP. A host with a problem is recorded and left out, so the
    /// checks across hosts (duplicate IPs, master0) see only what was written right.
    pub(super) fn hosts(&self, hosts: &[raw::Host], cluster_ssh: &raw::Ssh) -> Vec<HostSpec> {
        let mut out = Vec::new();
        let mut seen: HashMap<IpAddr, Vec<Seg>> = HashMap::new();
        for (h, host) in hosts.iter().enumerate() {
            let segs = [K("spec"), K("hosts"), I(h)];
            let why = "accepted and not acted on: node labels and taints are set on a running cluster, and this version prepares hosts without bootstrapping one";
            self.not_acted_on(&host.labels, &at(&segs, &[K("labels")]), why);
            self.not_acted_on(&host.taints, &at(&segs, &[K("taints")]), why);
            let before = self.errors.borrow().len();
            if host.ips.is_empty() {
                self.error(self.fail(
                    &at(&segs, &[K("ips")]),
                    "no IPs",
                    "expected at least one IP address",
                ));
            }
            let roles = self.keep(self.roles(&host.roles, &at(&segs, &[K("roles")])));
            if let Some(ssh) = &host.ssh {
                self.keep(self.ssh_checks(ssh, &at(&segs, &[K("ssh")])));
            }
            let ssh =
                self.keep(self.merged_ssh(cluster_ssh, host.ssh.as_ref(), &at(&segs, &[K("ssh")])));
            let env = self.env_list(&host.env, &at(&segs, &[K("env")]));
            let mut addrs = Vec::new();
            for (i, ip) in host.ips.iter().enumerate() {
                let here = at(&segs, &[K("ips"), I(i)]);
                let Ok(addr) = ip.trim().parse::<IpAddr>() else {
                    self.error(self.fail(
                        &here,
                        &format!("{ip:?} is not an IP address"),
                        "expected an IPv4 or IPv6 address such as 192.168.0.2",
                    ));
                    continue;
                };
                if let Some(first) = seen.get(&addr) {
                    self.error(self.fail(
                        &here,
                        &format!(
                            "IP {addr} is listed twice (also at {})",
                            crate::clusterfile::locate::render(first)
                        ),
                        "expected each host once",
                    ));
                    continue;
                }
                seen.insert(addr, here);
                addrs.push(addr);
            }
            let (Some(roles), Some(ssh)) = (roles, ssh) else {
                continue;
            };
            if self.errors.borrow().len() != before {
                continue;
            }
            for addr in addrs {
                out.push(HostSpec {
                    ip: addr.to_string(),
                    roles: roles.clone(),
                    ssh: ssh.clone(),
                    env: env.clone(),
                });
            }
        }
        out
    }

    pub(super) fn roles(&self, roles: &[String], segs: &[Seg]) -> Result<Vec<String>, Failure> {
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
}

/// A role usable in a `|`-joined plugin scope.
pub(in crate::clusterfile) fn is_role_name(role: &str) -> bool {
    let mut chars = role.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A DNS-style host name (also what `/etc/hosts` can hold safely).
pub(super) fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}
