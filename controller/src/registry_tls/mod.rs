//! The local registry's TLS material (SPEC §2): a CA and a server certificate per cluster,
//! generated on the controller and kept in a private state directory, so every apply hands
//! the hosts the same CA (their runtimes keep trusting it) and a re-apply changes nothing.
//!
//! The server certificate names the registry domain, the registry hosts' IPs and the
//! Clusterfile's `cert.subjectAltName`; it is issued again (by the same CA) when that list
//! grows, and both are replaced on request (`--rotate-registry-certs`).

mod store;

pub use store::{StoreError, TlsStore};

use crate::clusterfile::{Clusterfile, Secret};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::net::IpAddr;
use std::path::PathBuf;
use time::{Duration, OffsetDateTime};

/// How long a generated CA is valid.
const CA_DAYS: i64 = 3650;

/// How long a server certificate is valid; it is reissued well before, when it has less
/// than [`RENEW_DAYS`] left.
const SERVER_DAYS: i64 = 825;

/// A server certificate with less than this left is reissued on the next apply.
pub const RENEW_DAYS: i64 = 30;

/// Why the TLS material could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating or signing failed.
    #[error("generating the registry's {what}: {source}")]
    Generate {
        /// CA or server certificate.
        what: &'static str,
        /// The error.
        #[source]
        source: rcgen::Error,
    },
    /// The state directory could not be used.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the server certificate must name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// DNS names: the registry domain first, then `cert.subjectAltName.dnsNames`.
    pub dns: Vec<String>,
    /// IPs: the registry hosts', then `cert.subjectAltName.ips`.
    pub ips: Vec<IpAddr>,
}

impl Names {
    /// The names as certificate SAN strings, sorted and without repeats (the order the
    /// state records them in).
    fn sans(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .dns
            .iter()
            .cloned()
            .chain(self.ips.iter().map(IpAddr::to_string))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// A cluster's registry TLS material, as the hosts receive it.
#[derive(Clone, Debug)]
pub struct RegistryTls {
    /// The CA every host's runtime trusts (PEM).
    pub ca_pem: String,
    /// The registry's certificate (PEM), for registry hosts.
    pub cert_pem: String,
    /// Its private key (PEM), for registry hosts only; never printed.
    pub key_pem: Secret,
}

impl RegistryTls {
    /// What a host's plan carries: the CA for every host; the certificate and key for a
    /// host that runs the registry, and for no other.
    pub fn for_host(&self, registry_host: bool) -> installer_proto::plan::RegistryTls {
        installer_proto::plan::RegistryTls {
            ca_pem: self.ca_pem.clone(),
            server: registry_host.then(|| installer_proto::plan::ServerTls {
                cert_pem: self.cert_pem.clone(),
                key_pem: self.key_pem.clone(),
            }),
        }
    }
}

/// What the server certificate of `cf`'s registry names: the domain and
/// `cert.subjectAltName.dnsNames`; the registry hosts' IPs and `cert.subjectAltName.ips`.
pub fn names_for(cf: &Clusterfile) -> Names {
    let mut dns = vec![cf.registry.domain.clone()];
    dns.extend(cf.registry.cert_dns.iter().cloned());
    let mut ips: Vec<IpAddr> = cf
        .registry_hosts()
        .iter()
        .filter_map(|h| h.ip.parse().ok())
        .collect();
    ips.extend(cf.registry.cert_ips.iter().copied());
    Names { dns, ips }
}

/// The material of `cf`'s registry for this run, from the cluster's store under
/// [`state_root`]: `None` when the registry is insecure. `rotate` replaces it
/// (`--rotate-registry-certs`); a dry run writes nothing and says what a run would use.
pub fn for_cluster(
    cf: &Clusterfile,
    rotate: bool,
    dry_run: bool,
) -> Result<Option<RegistryTls>, TlsError> {
    if cf.registry.insecure {
        return Ok(None);
    }
    let mut store = TlsStore::new(&state_root(), &cf.name);
    if dry_run {
        store = store.read_only();
    }
    ensure(&store, &names_for(cf), rotate).map(Some)
}

/// The cluster's material from `store`, generated or reissued as needed: a new CA when
/// there is none or `rotate`; a new server certificate when the CA is new, the stored one
/// lacks a name of `names`, or it expires within [`RENEW_DAYS`].
pub fn ensure(store: &TlsStore, names: &Names, rotate: bool) -> Result<RegistryTls, TlsError> {
    let now = OffsetDateTime::now_utc();
    let (ca_pem, ca_key, new_ca) = match store.load_ca()? {
        Some((cert, key)) if !rotate => (cert, key, false),
        _ => {
            let (cert, key) = new_ca(store.cluster(), now)?;
            store.save_ca(&cert, &key)?;
            (cert, key, true)
        }
    };
    let wanted = names.sans();
    if !new_ca
        && let Some(server) = store.load_server()?
        && wanted.iter().all(|n| server.sans.contains(n))
        && server.not_after_unix - now.unix_timestamp() > RENEW_DAYS * 86_400
    {
        return Ok(RegistryTls {
            ca_pem,
            cert_pem: server.cert_pem,
            key_pem: Secret::new(server.key_pem),
        });
    }
    let (cert_pem, key_pem, not_after) = new_server(store.cluster(), &ca_key, &wanted, now)?;
    store.save_server(&cert_pem, &key_pem, &wanted, not_after.unix_timestamp())?;
    Ok(RegistryTls {
        ca_pem,
        cert_pem,
        key_pem: Secret::new(key_pem),
    })
}

/// The CA's subject: fixed per cluster, so the issuer of a reissued server certificate is
/// the stored CA (the subject and key are what tie them).
fn ca_params(cluster: &str, now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "installer");
    dn.push(
        DnType::CommonName,
        format!("installer registry CA of cluster {cluster}"),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(CA_DAYS);
    params
}

fn new_ca(cluster: &str, now: OffsetDateTime) -> Result<(String, Secret), TlsError> {
    let fail = |source| TlsError::Generate { what: "CA", source };
    let key = KeyPair::generate().map_err(fail)?;
    let cert = ca_params(cluster, now).self_signed(&key).map_err(fail)?;
    Ok((cert.pem(), Secret::new(key.serialize_pem())))
}

fn new_server(
    cluster: &str,
    ca_key: &Secret,
    sans: &[String],
    now: OffsetDateTime,
) -> Result<(String, String, OffsetDateTime), TlsError> {
    let fail = |source| TlsError::Generate {
        what: "server certificate",
        source,
    };
    let ca_key = KeyPair::from_pem(ca_key.expose()).map_err(fail)?;
    let issuer = Issuer::new(ca_params(cluster, now), ca_key);
    let key = KeyPair::generate().map_err(fail)?;
    let mut params = CertificateParams::new(sans.to_vec()).map_err(fail)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "installer");
    dn.push(
        DnType::CommonName,
        sans.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::days(1);
    let not_after = now + Duration::days(SERVER_DAYS);
    params.not_after = not_after;
    let cert = params.signed_by(&key, &issuer).map_err(fail)?;
    Ok((cert.pem(), key.serialize_pem(), not_after))
}

/// Where installer keeps per-cluster state on the controller: `$XDG_STATE_HOME/installer`
/// or `~/.local/state/installer`.
pub fn state_root() -> PathBuf {
    crate::home::xdg_dir("XDG_STATE_HOME", ".local/state", "state")
}

#[cfg(test)]
mod tests;
