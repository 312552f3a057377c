//! The cluster network: a Docker bridge network with a /24 of its own.
//!
//! Clusters of parallel tests must not collide, so the subnet is found by trying: start at a
//! random /24 of [`RANGE`], skip those that overlap a route of this machine, and let Docker
//! refuse those another network holds (its check is atomic, so two processes racing for the
//! same /24 cannot both get it).

use super::{Error, LABEL};
use crate::docker::{self, DockerError};
use std::net::Ipv4Addr;
use std::path::Path;

/// The /16 cluster networks are carved from. Private (RFC 1918) and outside Docker's default
/// address pools (172.17.0.0/12, 192.168.0.0/16).
pub(super) const RANGE: [u8; 2] = [10, 231];

/// Label on the network recording the cluster's working directory, so `down` can remove
/// the files of a cluster started by another process.
pub(super) const WORKDIR_LABEL: &str = "installer-testenv.workdir";

/// Creates the network and returns its subnet (`a.b.c.0/24`) and the first three octets.
pub(super) fn create_network(
    cluster: &str,
    network: &str,
    workdir: &Path,
) -> Result<(String, [u8; 3]), Error> {
    let routes = host_routes();
    let start = super::files::random_hex(1)
        .ok()
        .and_then(|h| u8::from_str_radix(&h, 16).ok())
        .unwrap_or(0);
    for offset in 0..=255u8 {
        let third = start.wrapping_add(offset);
        let prefix = [RANGE[0], RANGE[1], third];
        let base = u32::from(Ipv4Addr::new(prefix[0], prefix[1], prefix[2], 0));
        if routes
            .iter()
            .any(|&(dest, mask)| overlaps(base, 0xffff_ff00, dest, mask))
        {
            continue;
        }
        let subnet = format!("{}.{}.{}.0/24", prefix[0], prefix[1], prefix[2]);
        let result = docker::run([
            "network",
            "create",
            "--driver",
            "bridge",
            // No route out: test traffic stays between the controller and the nodes.
            "--internal",
            "--subnet",
            &subnet,
            "--label",
            &format!("{LABEL}={cluster}"),
            "--label",
            &format!("{WORKDIR_LABEL}={}", workdir.display()),
            network,
        ]);
        match result {
            Ok(_) => return Ok((subnet, prefix)),
            Err(DockerError::Failed { stderr, .. }) if stderr.contains("overlaps") => {
                tracing::debug!(%subnet, "subnet taken, trying the next one");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::NoFreeSubnet {
        range: format!("{}.{}.0.0/16", RANGE[0], RANGE[1]),
    })
}

/// Whether two IPv4 prefixes share an address.
fn overlaps(a: u32, a_mask: u32, b: u32, b_mask: u32) -> bool {
    let common = a_mask & b_mask;
    a & common == b & common
}

/// The (destination, mask) of this machine's IPv4 routes, the default route left out (it
/// overlaps everything and says nothing about which addresses are taken).
fn host_routes() -> Vec<(u32, u32)> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    parse_routes(&text)
}

fn parse_routes(text: &str) -> Vec<(u32, u32)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; addresses are
            // the in-memory (network order) bytes printed as a native-endian number.
            let field = |i: usize| -> Option<u32> {
                let raw = u32::from_str_radix(fields.get(i)?, 16).ok()?;
                Some(u32::from_be_bytes(raw.to_ne_bytes()))
            };
            let (dest, mask) = (field(1)?, field(7)?);
            (mask != 0).then_some((dest, mask))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_of_prefixes() {
        let net = |a, b, c| u32::from(Ipv4Addr::new(a, b, c, 0));
        assert!(overlaps(
            net(10, 231, 5),
            0xffff_ff00,
            net(10, 0, 0),
            0xff00_0000
        ));
        assert!(overlaps(
            net(10, 231, 5),
            0xffff_ff00,
            net(10, 231, 5),
            0xffff_ff00
        ));
        assert!(!overlaps(
            net(10, 231, 5),
            0xffff_ff00,
            net(10, 231, 6),
            0xffff_ff00
        ));
        assert!(!overlaps(
            net(10, 231, 5),
            0xffff_ff00,
            net(172, 17, 0),
            0xffff_0000
        ));
    }

    #[test]
    fn routes_are_read_in_network_order() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                    br-x\t0005E70A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let routes = parse_routes(text);
        assert_eq!(
            routes,
            vec![
                (u32::from(Ipv4Addr::new(172, 17, 0, 0)), 0xffff_0000),
                (u32::from(Ipv4Addr::new(10, 231, 5, 0)), 0xffff_ff00),
            ]
        );
    }
}
