//! Place the registry's TLS material (SPEC §2): the cluster CA where each runtime looks for
//! the registry's trust — docker's `/etc/docker/certs.d/<domain>:<port>/ca.crt`, containerd's
//! `/etc/containerd/certs.d/<domain>:<port>/` (`ca.crt` and a `hosts.toml` naming it) — and,
//! on registry hosts, the server certificate and key at `<rootfs>/certs/<domain>.crt|.key`,
//! where the agent's own registry start and sealer's `init-registry.sh` serve TLS from.
//!
//! Each file is claimed and recorded before it is written (a file that was there is backed
//! up), written atomically, and read back into the record, so clean removes or restores
//! exactly these and a re-apply puts back a file someone removed. The key is written 0600,
//! and no other host's plan carries it.

use super::installed::{self, Want};
use super::{Ctx, StepResult, Written, step_err};
use crate::fsutil;
use crate::journal::Journal;
use crate::root::HostRoot;
use installer_proto::manifest::hex;
use installer_proto::plan::{Plan, RegistryPlan};
use sha2::{Digest, Sha256};

/// Where docker reads per-registry trust.
pub(crate) const DOCKER_CERTS_D: &str = "/etc/docker/certs.d";

/// Where containerd reads per-registry hosts and trust (its `config_path`).
pub(crate) const CONTAINERD_CERTS_D: &str = "/etc/containerd/certs.d";

/// One file the step places.
pub(crate) struct TrustFile<'p> {
    /// Host path.
    pub host_path: String,
    /// Content.
    pub content: Content<'p>,
    /// Mode.
    pub mode: u32,
    /// What it is, for messages.
    pub what: &'static str,
}

/// A file's content: public text, or the key, read only to be written.
pub(crate) enum Content<'p> {
    /// A certificate or configuration.
    Public(String),
    /// The registry's private key.
    Key(&'p installer_proto::secret::Secret),
}

impl Content<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Content::Public(text) => text.as_bytes(),
            Content::Key(key) => key.expose().as_bytes(),
        }
    }
}

impl TrustFile<'_> {
    /// The sha256 of the content (the key is hashed, never kept).
    pub(crate) fn sha256(&self) -> String {
        hex(&Sha256::digest(self.content.bytes()))
    }

    fn want(&self) -> Want {
        Want::File {
            sha256: self.sha256(),
            mode: self.mode,
        }
    }
}

/// containerd's `hosts.toml` for the registry: the registry itself, over TLS, verified with
/// the CA placed beside it.
pub(crate) fn hosts_toml(registry: &RegistryPlan) -> String {
    let hp = registry.host_port();
    format!(
        "# The cluster's local registry, over TLS verified with the cluster CA beside this\n\
         # file. Placed by installer-agent; `installer clean` removes it.\n\
         server = \"https://{hp}\"\n\
         \n\
         [host.\"https://{hp}\"]\n  \
           capabilities = [\"pull\", \"resolve\", \"push\"]\n  \
           ca = \"{CONTAINERD_CERTS_D}/{hp}/ca.crt\"\n"
    )
}

/// The files the plan's registry TLS material becomes on this host, in the order they are
/// placed; none when the registry is insecure.
pub(crate) fn files<'p>(plan: &'p Plan, host_rootfs: &str) -> Vec<TrustFile<'p>> {
    let reg = &plan.registry;
    let Some(tls) = &reg.tls else {
        return Vec::new();
    };
    let hp = reg.host_port();
    let public = |host_path: String, text: String, what| TrustFile {
        host_path,
        content: Content::Public(text),
        mode: 0o644,
        what,
    };
    let mut out = vec![
        public(
            format!("{DOCKER_CERTS_D}/{hp}/ca.crt"),
            tls.ca_pem.clone(),
            "docker's trust of the registry CA",
        ),
        public(
            format!("{CONTAINERD_CERTS_D}/{hp}/ca.crt"),
            tls.ca_pem.clone(),
            "containerd's trust of the registry CA",
        ),
        public(
            format!("{CONTAINERD_CERTS_D}/{hp}/hosts.toml"),
            hosts_toml(reg),
            "containerd's hosts.toml for the registry",
        ),
    ];
    if let Some(server) = &tls.server {
        let certs = format!("{host_rootfs}/certs");
        out.push(public(
            format!("{certs}/{}.crt", reg.domain),
            server.cert_pem.clone(),
            "the registry's certificate",
        ));
        out.push(TrustFile {
            host_path: format!("{certs}/{}.key", reg.domain),
            content: Content::Key(&server.key_pem),
            mode: 0o600,
            what: "the registry's key",
        });
    }
    out
}

/// Runs the step.
pub(crate) fn run(ctx: &mut Ctx<'_>) -> StepResult {
    let plan = ctx.plan;
    let mut written = Written::default();
    for file in files(plan, &ctx.paths.host_rootfs) {
        let target = ctx.root.path(&file.host_path);
        if let Some(dir) = target.parent() {
            let created = fsutil::create_dirs(dir).map_err(step_err)?;
            installed::record_created_dirs(ctx, &created)?;
        }
        let want = file.want();
        if !installed::claim(ctx, &file.host_path, &target, file.what, &want)? {
            continue;
        }
        fsutil::write_atomic(&target, file.content.bytes(), file.mode).map_err(step_err)?;
        installed::record_left(ctx, &file.host_path, &target, false)?;
        written.files += 1;
        written.bytes += file.content.bytes().len() as u64;
    }
    Ok(written)
}

/// Why a placed file is no longer what the step left, if one is not.
pub(crate) fn drift(
    root: &HostRoot,
    plan: &Plan,
    host_rootfs: &str,
    journal: &Journal,
) -> Option<String> {
    files(plan, host_rootfs)
        .iter()
        .find_map(|f| installed::drift(root, journal, &f.host_path, &f.want()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use installer_proto::plan::{RegistryTls, ServerTls};
    use installer_proto::secret::Secret;

    fn registry(server: bool) -> RegistryPlan {
        RegistryPlan {
            domain: "sea.hub".into(),
            port: 5000,
            deploy: server,
            tls: Some(RegistryTls {
                ca_pem: "CA".into(),
                server: server.then(|| ServerTls {
                    cert_pem: "CERT".into(),
                    key_pem: Secret::new("KEY"),
                }),
            }),
            auth: None,
        }
    }

    fn plan(registry: RegistryPlan) -> Plan {
        let mut plan = super::super::test_plan::plan_with(&[]);
        plan.registry = registry;
        plan
    }

    #[test]
    fn every_host_trusts_the_ca_and_only_registry_hosts_get_the_key() {
        let node = plan(registry(false));
        let paths: Vec<_> = files(&node, "/data/c/rootfs")
            .into_iter()
            .map(|f| f.host_path)
            .collect();
        assert_eq!(
            paths,
            [
                "/etc/docker/certs.d/sea.hub:5000/ca.crt",
                "/etc/containerd/certs.d/sea.hub:5000/ca.crt",
                "/etc/containerd/certs.d/sea.hub:5000/hosts.toml",
            ]
        );
        let master = plan(registry(true));
        let files = files(&master, "/data/c/rootfs");
        let key = files.last().unwrap();
        assert_eq!(key.host_path, "/data/c/rootfs/certs/sea.hub.key");
        assert_eq!(key.mode, 0o600);
        assert_eq!(files[3].host_path, "/data/c/rootfs/certs/sea.hub.crt");
        let mut insecure = registry(true);
        insecure.tls = None;
        assert!(super::files(&plan(insecure), "/r").is_empty());
    }

    #[test]
    fn hosts_toml_names_the_registry_over_https_and_the_ca_beside_it() {
        let text = hosts_toml(&registry(false));
        assert!(text.contains("server = \"https://sea.hub:5000\""), "{text}");
        assert!(text.contains("[host.\"https://sea.hub:5000\"]"), "{text}");
        assert!(
            text.contains("ca = \"/etc/containerd/certs.d/sea.hub:5000/ca.crt\""),
            "{text}"
        );
    }
}
