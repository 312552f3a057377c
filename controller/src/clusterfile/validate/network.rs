//! The network side of a Cluster: the local registry's domain and port, and the extra
//! `/etc/hosts` names of `hostAliases`.

use super::hosts::is_host_name;
use super::{Ctx, at};
use crate::clusterfile::locate::Seg;
use crate::clusterfile::raw;
use crate::clusterfile::{DEFAULT_REGISTRY_DOMAIN, DEFAULT_REGISTRY_PORT, RegistrySpec};
use Seg::{Index as I, Key as K};
use installer_proto::plan::{RegistryAuth, check_password, check_username};
use std::net::IpAddr;

impl Ctx<'_> {
    /// `spec.registry`, with defaults; a problem is recorded and the default kept.
    pub(super) fn registry(&self, registry: Option<&raw::Registry>) -> RegistrySpec {
        let segs = [K("spec"), K("registry")];
        let mut spec = RegistrySpec {
            domain: DEFAULT_REGISTRY_DOMAIN.to_string(),
            port: DEFAULT_REGISTRY_PORT,
            ha: true,
            insecure: false,
            cert_ips: Vec::new(),
            cert_dns: Vec::new(),
            auth: None,
        };
        let Some(registry) = registry else {
            return spec;
        };
        self.keep(self.refuse(
            &registry.external_registry,
            &at(&segs, &[K("externalRegistry")]),
            "this version runs the local registry only",
            "remove it",
        ));
        let Some(local) = &registry.local_registry else {
            return spec;
        };
        let segs = at(&segs, &[K("localRegistry")]);
        spec.auth = self.registry_auth(local, &segs);
        if let Some(domain) = &local.domain {
            if is_host_name(domain) {
                spec.domain = domain.clone();
            } else {
                self.error(self.fail(
                    &at(&segs, &[K("domain")]),
                    &format!("domain {domain:?} is not a host name"),
                    "expected a name such as sea.hub (letters, digits, '-' and '.')",
                ));
            }
        }
        if let Some(port) = local.port {
            spec.port = port.0;
        }
        if let Some(ha) = local.ha {
            spec.ha = ha;
        }
        spec.insecure = local.insecure.unwrap_or(false);
        let san = local
            .cert
            .as_ref()
            .and_then(|c| c.subject_alt_name.as_ref());
        if let Some(san) = san {
            let san_segs = at(&segs, &[K("cert"), K("subjectAltName")]);
            for (i, ip) in san.ips.iter().enumerate() {
                match ip.trim().parse::<IpAddr>() {
                    Ok(addr) => spec.cert_ips.push(addr),
                    Err(_) => self.error(self.fail(
                        &at(&san_segs, &[K("ips"), I(i)]),
                        &format!("{ip:?} is not an IP address"),
                        "expected an IPv4 or IPv6 address the registry certificate should name",
                    )),
                }
            }
            for (i, name) in san.dns_names.iter().enumerate() {
                if is_host_name(name) {
                    spec.cert_dns.push(name.clone());
                } else {
                    self.error(self.fail(
                        &at(&san_segs, &[K("dnsNames"), I(i)]),
                        &format!("{name:?} is not a host name"),
                        "expected a DNS name such as registry.example.com",
                    ));
                }
            }
        }
        spec
    }

    /// `username` and `password`: both or neither; the password a literal or `${ENV}`.
    fn registry_auth(&self, local: &raw::LocalRegistry, segs: &[Seg]) -> Option<RegistryAuth> {
        let (username, password) = match (&local.username, &local.password) {
            (None, None) => return None,
            (Some(u), Some(p)) => (u, p),
            (Some(_), None) | (None, Some(_)) => {
                let (given, missing) = if local.username.is_some() {
                    ("username", "password")
                } else {
                    ("password", "username")
                };
                self.error(self.fail(
                    &at(segs, &[K(given)]),
                    &format!("{given} is given without {missing}"),
                    "give both (the password may be ${ENV_NAME}), or neither for a registry without auth",
                ));
                return None;
            }
        };
        let password = match self.secret(password, &at(segs, &[K("password")])) {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.error(self.fail(
                    &at(segs, &[K("password")]),
                    "password is empty",
                    "give the registry password, or ${ENV_NAME} to read it from the environment",
                ));
                return None;
            }
            Err(failure) => {
                self.error(failure);
                return None;
            }
        };
        let hint = "htpasswd and docker's credential files take it as user:password";
        let mut ok = true;
        if let Err(why) = check_username(username) {
            self.error(self.fail(&at(segs, &[K("username")]), &why, hint));
            ok = false;
        }
        if let Err(why) = check_password(password.expose()) {
            self.error(self.fail(&at(segs, &[K("password")]), &why, hint));
            ok = false;
        }
        let auth = RegistryAuth {
            username: username.clone(),
            password,
        };
        if !ok {
            return None;
        }
        Some(auth)
    }

    /// `spec.hostAliases`; an alias with a problem is recorded and left out.
    pub(super) fn host_aliases(&self, aliases: &[raw::HostAlias]) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for (i, alias) in aliases.iter().enumerate() {
            let segs = [K("spec"), K("hostAliases"), I(i)];
            let before = self.errors.borrow().len();
            let ip = alias.ip.trim().parse::<IpAddr>();
            if ip.is_err() {
                self.error(self.fail(
                    &at(&segs, &[K("ip")]),
                    &format!("{:?} is not an IP address", alias.ip),
                    "expected an IPv4 or IPv6 address",
                ));
            }
            if alias.hostnames.is_empty() {
                self.error(self.fail(
                    &at(&segs, &[K("hostnames")]),
                    "no hostnames",
                    "expected at least one name for this IP",
                ));
            }
            for (j, name) in alias.hostnames.iter().enumerate() {
                if !is_host_name(name) {
                    self.error(self.fail(
                        &at(&segs, &[K("hostnames"), I(j)]),
                        &format!("{name:?} is not a host name"),
                        "expected letters, digits, '-' and '.' (it is written to /etc/hosts)",
                    ));
                }
            }
            if let Ok(ip) = ip
                && self.errors.borrow().len() == before
            {
                out.push((ip.to_string(), alias.hostnames.clone()));
            }
        }
        out
    }
}
