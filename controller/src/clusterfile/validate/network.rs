//! The network side of a Cluster: the local registry's domain and port, and the extra
//! `/etc/hosts` names of `hostAliases`.

use super::hosts::is_host_name;
use super::{Ctx, at};
use crate::clusterfile::locate::Seg;
use crate::clusterfile::raw;
use crate::clusterfile::{DEFAULT_REGISTRY_DOMAIN, DEFAULT_REGISTRY_PORT, RegistrySpec};
use Seg::{Index as I, Key as K};
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
        let no_auth = "the local registry serves without authentication in this version";
        self.keep(self.refuse(
            &local.username,
            &at(&segs, &[K("username")]),
            no_auth,
            "remove it",
        ));
        self.keep(self.refuse(
            &local.password,
            &at(&segs, &[K("password")]),
            no_auth,
            "remove it",
        ));
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
