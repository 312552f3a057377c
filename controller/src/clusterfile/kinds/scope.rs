//! Where a Plugin runs: `spec.scope` (roles joined by `|`, sealer v0.9) or `spec.on`
//! (sealer v0.8: roles, IPs, IPv4 ranges `a-b`, or `node-role.kubernetes.io/<role>=`
//! labels, joined by `,` or `|`).

use crate::clusterfile::HostSpec;
use crate::clusterfile::docs::{Failure, Problem};
use crate::clusterfile::locate::{NodePath, Seg};
use crate::clusterfile::validate::is_role_name;
use Seg::Key as K;
use std::net::{IpAddr, Ipv4Addr};

/// The hosts a Plugin runs on: those with one of `roles`, and those listed by IP.
#[derive(Debug, Default, PartialEq, Eq)]
pub(in crate::clusterfile) struct Scope {
    pub roles: Vec<String>,
    pub ips: Vec<String>,
}

/// The label sealer v0.8 puts on a role's nodes.
const ROLE_LABEL: &str = "node-role.kubernetes.io/";

/// Reads the scope of the Plugin in `doc`. `hosts` is `None` when the Cluster could not be
/// read; then the names are not checked against it.
pub(in crate::clusterfile) fn of(
    doc: usize,
    scope: Option<String>,
    on: Option<String>,
    hosts: Option<&[HostSpec]>,
    warnings: &mut Vec<Problem>,
) -> Result<Scope, Failure> {
    let mut known: Vec<&str> = Vec::new();
    for h in hosts.unwrap_or_default() {
        for r in &h.roles {
            if !known.contains(&r.as_str()) {
                known.push(r);
            }
        }
    }
    let expected = format!("expected roles joined by |, among: {}", known.join(", "));
    let scope = scope.filter(|t| !t.trim().is_empty());
    let on = on.filter(|t| !t.trim().is_empty());
    let (text, key, v08) = match (scope, on) {
        (Some(_), Some(_)) => {
            return Err(Failure::at(
                doc,
                &[K("spec"), K("on")],
                true,
                "both scope and on are given (on is sealer v0.8's name for scope)",
                "keep scope only",
            ));
        }
        (Some(text), None) => (text, "scope", false),
        (None, Some(text)) => (text, "on", true),
        (None, None) => {
            return Err(Failure::at(
                doc,
                &[K("spec"), K("scope")],
                true,
                "no scope (sealer runs such a plugin on no host)",
                &expected,
            ));
        }
    };
    let segs = [K("spec"), K(key)];
    let fail = |what: String, expected: &str| Failure::at(doc, &segs, false, &what, expected);
    let mut out = Scope::default();
    let separators: &[char] = if v08 { &['|', ','] } else { &['|'] };
    for part in text.split(separators).map(str::trim) {
        if v08 && let Some(ips) = ip_part(part, hosts).map_err(|w| fail(w, &expected))? {
            for ip in ips {
                if !out.ips.contains(&ip) {
                    out.ips.push(ip);
                }
            }
            continue;
        }
        let role = match part.strip_prefix(ROLE_LABEL) {
            Some(label) if v08 => label.trim_end_matches('='),
            _ => part,
        };
        let unknown = if hosts.is_some() {
            !known.contains(&role)
        } else {
            !is_role_name(role)
        };
        if unknown {
            return Err(fail(
                format!("scope role {role:?} is not a role of any host"),
                &expected,
            ));
        }
        if !out.roles.iter().any(|r| r == role) {
            out.roles.push(role.to_string());
        }
    }
    if v08 {
        let mut read: Vec<String> = out.roles.clone();
        read.extend(out.ips.iter().cloned());
        warnings.push(Problem {
            doc,
            path: NodePath::key(&segs),
            message: format!(
                "spec.on: sealer v0.8's name for scope; read as the hosts with {} (v0.9 writes scope: with roles joined by |)",
                read.join(", ")
            ),
        });
    }
    Ok(out)
}

/// An IP or an IPv4 range `a-b` of a v0.8 `on:`: the listed hosts' IPs, `None` when the
/// part is not an address form. An address that is no host's is an error (a typo would
/// otherwise run the hook nowhere).
fn ip_part(part: &str, hosts: Option<&[HostSpec]>) -> Result<Option<Vec<String>>, String> {
    let hosts = hosts.unwrap_or_default();
    if let Ok(ip) = part.parse::<IpAddr>() {
        let ip = ip.to_string();
        if !hosts.is_empty() && !hosts.iter().any(|h| h.ip == ip) {
            return Err(format!("{ip} is not the IP of any host"));
        }
        return Ok(Some(vec![ip]));
    }
    let Some((from, to)) = part.split_once('-') else {
        return Ok(None);
    };
    let (Ok(from), Ok(to)) = (
        from.trim().parse::<Ipv4Addr>(),
        to.trim().parse::<Ipv4Addr>(),
    ) else {
        return Ok(None);
    };
    let (lo, hi) = (u32::from(from), u32::from(to));
    if lo > hi {
        return Err(format!("range {part} ends before it starts"));
    }
    let ips: Vec<String> = hosts
        .iter()
        .filter(|h| {
            h.ip.parse::<Ipv4Addr>()
                .is_ok_and(|a| (lo..=hi).contains(&u32::from(a)))
        })
        .map(|h| h.ip.clone())
        .collect();
    if ips.is_empty() && !hosts.is_empty() {
        return Err(format!("range {part} holds no host's IP"));
    }
    Ok(Some(ips))
}
