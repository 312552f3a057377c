//! Place what a host needs to reach the registry (SPEC §2): the cluster CA where each runtime
//! looks for the registry's trust — docker's `/etc/docker/certs.d/<domain>:<port>/ca.crt`,
//! containerd's `/etc/containerd/certs.d/<domain>:<port>/` (`ca.crt` and a `hosts.toml`
//! naming it) — and, on registry hosts, the server certificate and key at
//! `<rootfs>/certs/<domain>.crt|.key`, where the agent's own registry start and sealer's
//! `init-registry.sh` serve TLS from. With credentials: the bcrypt htpasswd at
//! `<rootfs>/etc/registry_htpasswd` on registry hosts, and on every host the registry's entry
//! in docker's `/root/.docker/config.json` and the kubelet's `/var/lib/kubelet/config.json`
//! (which the kubelet hands to the CRI, containerd included, with each pull), added to what
//! those files held.
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
use installer_proto::plan::{Plan, RegistryAuth, RegistryPlan};
use installer_proto::secret::Secret;
use sha2::{Digest, Sha256};

/// Where docker reads per-registry trust.
pub(crate) const DOCKER_CERTS_D: &str = "/etc/docker/certs.d";

/// Where containerd reads per-registry hosts and trust (its `config_path`).
pub(crate) const CONTAINERD_CERTS_D: &str = "/etc/containerd/certs.d";

/// Where docker's CLI (root's) reads registry credentials.
pub(crate) const DOCKER_CONFIG: &str = "/root/.docker/config.json";

/// Where the kubelet reads registry credentials (and passes them to the CRI with each pull).
pub(crate) const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.json";

/// The bcrypt cost of the htpasswd hash (distribution's default, htpasswd's `-B`).
const BCRYPT_COST: u32 = 10;

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

/// A file's content.
pub(crate) enum Content<'p> {
    /// A certificate or configuration.
    Public(String),
    /// The registry's private key.
    Key(&'p Secret),
    /// The htpasswd line of the credentials, bcrypt-hashed with a salt derived from the
    /// cluster and the credentials, so the same credentials give the same file on every
    /// apply (a random salt would rewrite it, and restart the registry, each time).
    Htpasswd {
        /// The cluster name (part of the salt).
        cluster: &'p str,
        /// The credentials.
        auth: &'p RegistryAuth,
    },
    /// A docker-format credential file: `auths["<domain>:<port>"].auth` set to the
    /// credentials, in whatever JSON the file held before apply.
    DockerAuth {
        /// `<domain>:<port>`.
        host_port: String,
        /// The credentials.
        auth: &'p RegistryAuth,
    },
}

impl Content<'_> {
    /// The bytes to write, given what the file held before apply (`base`; only credential
    /// files merge with it).
    fn bytes(&self, base: Option<&[u8]>) -> Result<Vec<u8>, String> {
        Ok(match self {
            Content::Public(text) => text.as_bytes().to_vec(),
            Content::Key(key) => key.expose().as_bytes().to_vec(),
            Content::Htpasswd { cluster, auth } => htpasswd_line(cluster, auth)?.into_bytes(),
            Content::DockerAuth { host_port, auth } => docker_config(base, host_port, auth)?,
        })
    }

    /// What the step's input hash covers of this content: the content itself, or for a
    /// credential file the entry it adds (the rest of the file is not the plan's).
    fn digest(&self) -> Result<String, String> {
        let bytes = match self {
            Content::DockerAuth { host_port, auth } => {
                [host_port.as_bytes(), b"\0", basic(auth).as_bytes()].concat()
            }
            other => other.bytes(None)?,
        };
        Ok(hex(&Sha256::digest(bytes)))
    }
}

impl TrustFile<'_> {
    /// The digest the step's input hash takes of this file (see [`Content`]); a content
    /// that cannot be formed hashes as its error, and the step then fails saying it.
    pub(crate) fn sha256(&self) -> String {
        self.content.digest().unwrap_or_else(|e| e)
    }

    /// What the file must hold, given what it held before apply.
    fn want(&self, base: Option<&[u8]>) -> Result<(Vec<u8>, Want), String> {
        let bytes = self.content.bytes(base)?;
        let want = Want::File {
            sha256: hex(&Sha256::digest(&bytes)),
            mode: self.mode,
        };
        Ok((bytes, want))
    }
}

/// `user:password`, base64: docker's `auth` value and the `Basic` credentials.
pub(crate) fn basic(auth: &RegistryAuth) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        auth.username,
        auth.password.expose()
    ))
}

/// `user:<bcrypt>` and a newline.
fn htpasswd_line(cluster: &str, auth: &RegistryAuth) -> Result<String, String> {
    let mut salt = [0u8; 16];
    let seed = Sha256::digest(
        [
            b"installer registry htpasswd\0".as_slice(),
            cluster.as_bytes(),
            b"\0",
            auth.username.as_bytes(),
            b"\0",
            auth.password.expose().as_bytes(),
        ]
        .concat(),
    );
    salt.copy_from_slice(&seed[..16]);
    let hash = bcrypt::hash_with_salt(auth.password.expose(), BCRYPT_COST, salt)
        .map_err(|e| format!("hashing the registry password: {e}"))?;
    Ok(format!(
        "{}:{}\n",
        auth.username,
        hash.format_for_version(bcrypt::Version::TwoY)
    ))
}

/// `base` (a docker config, or nothing) with the registry's credentials set.
fn docker_config(
    base: Option<&[u8]>,
    host_port: &str,
    auth: &RegistryAuth,
) -> Result<Vec<u8>, String> {
    let mut config: serde_json::Value = match base {
        Some(bytes) if !bytes.iter().all(u8::is_ascii_whitespace) => {
            serde_json::from_slice(bytes).map_err(|e| format!("it is not JSON ({e})"))?
        }
        _ => serde_json::json!({}),
    };
    let Some(object) = config.as_object_mut() else {
        return Err("it is JSON but not an object".into());
    };
    let auths = object
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}));
    let Some(auths) = auths.as_object_mut() else {
        return Err("its \"auths\" is not an object".into());
    };
    auths.insert(
        host_port.to_string(),
        serde_json::json!({ "auth": basic(auth) }),
    );
    let mut text = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
    text.push(b'\n');
    Ok(text)
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

/// The files the plan's registry TLS material and credentials become on this host, in the
/// order they are placed; none for an insecure registry without auth.
pub(crate) fn files<'p>(plan: &'p Plan, host_rootfs: &str) -> Vec<TrustFile<'p>> {
    let reg = &plan.registry;
    let mut out = tls_files(plan, host_rootfs);
    let Some(auth) = &reg.auth else {
        return out;
    };
    if reg.deploy {
        out.push(TrustFile {
            host_path: format!("{host_rootfs}/etc/registry_htpasswd"),
            content: Content::Htpasswd {
                cluster: &plan.cluster,
                auth,
            },
            mode: 0o600,
            what: "the registry's htpasswd",
        });
    }
    for (host_path, what) in [
        (DOCKER_CONFIG, "docker's registry credentials"),
        (KUBELET_CONFIG, "the kubelet's registry credentials"),
    ] {
        out.push(TrustFile {
            host_path: host_path.to_string(),
            content: Content::DockerAuth {
                host_port: reg.host_port(),
                auth,
            },
            mode: 0o600,
            what,
        });
    }
    out
}

/// The TLS part of [`files`].
fn tls_files<'p>(plan: &'p Plan, host_rootfs: &str) -> Vec<TrustFile<'p>> {
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
        let base = before_apply(ctx.journal, &file.host_path, &target).map_err(step_err)?;
        let (bytes, want) = file.want(base.as_deref()).map_err(|e| {
            step_err(format!(
                "{}: {e}; fix or move it aside and apply again",
                file.host_path
            ))
        })?;
        if !installed::claim(ctx, &file.host_path, &target, file.what, &want)? {
            continue;
        }
        fsutil::write_atomic(&target, &bytes, file.mode).map_err(step_err)?;
        installed::record_left(ctx, &file.host_path, &target, false)?;
        written.files += 1;
        written.bytes += bytes.len() as u64;
    }
    Ok(written)
}

/// What `host_path` held before apply first wrote it: its backup when apply replaced a file,
/// nothing when apply created it, and the file as it is when apply has not touched it yet.
fn before_apply(
    journal: &Journal,
    host_path: &str,
    target: &std::path::Path,
) -> Result<Option<Vec<u8>>, fsutil::FsError> {
    let read = |path: &std::path::Path| match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(fsutil::ctx(path, "reading")(e)),
    };
    match journal.record.installed.get(host_path) {
        Some(installed) => match &installed.backup {
            Some(name) => read(&journal.backup_dir().join(name)),
            None => Ok(None),
        },
        None => read(target),
    }
}

/// Why a placed file is no longer what the step left, if one is not.
pub(crate) fn drift(
    root: &HostRoot,
    plan: &Plan,
    host_rootfs: &str,
    journal: &Journal,
) -> Option<String> {
    files(plan, host_rootfs).iter().find_map(|f| {
        let target = root.path(&f.host_path);
        let base = before_apply(journal, &f.host_path, &target).ok().flatten();
        match f.want(base.as_deref()) {
            Ok((_, want)) => installed::drift(root, journal, &f.host_path, &want),
            Err(e) => Some(format!("{}: {e}", f.host_path)),
        }
    })
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

    fn auth() -> RegistryAuth {
        RegistryAuth {
            username: "admin".into(),
            password: Secret::new("s3cr\"et $(x)"),
        }
    }

    #[test]
    fn credentials_go_to_every_host_and_the_htpasswd_to_registry_hosts() {
        let mut node = registry(false);
        node.auth = Some(auth());
        let node = plan(node);
        let paths: Vec<_> = files(&node, "/r")
            .into_iter()
            .map(|f| f.host_path)
            .collect();
        assert_eq!(&paths[3..], [DOCKER_CONFIG, KUBELET_CONFIG]);
        let mut master = registry(true);
        master.auth = Some(auth());
        let master = plan(master);
        let all = files(&master, "/r");
        let htpasswd = all
            .iter()
            .find(|f| f.host_path == "/r/etc/registry_htpasswd")
            .unwrap();
        assert_eq!(htpasswd.mode, 0o600);
        let line = String::from_utf8(htpasswd.content.bytes(None).unwrap()).unwrap();
        let (user, hash) = line.trim_end().split_once(':').unwrap();
        assert_eq!(user, "admin");
        assert!(hash.starts_with("$2y$10$"), "{hash}");
        assert!(bcrypt::verify("s3cr\"et $(x)", hash).unwrap());
        assert!(
            !line.contains("s3cr"),
            "the password itself is not in the file"
        );
        // The same credentials give the same file: a re-apply changes nothing.
        assert_eq!(htpasswd.content.bytes(None).unwrap(), line.as_bytes());
    }

    #[test]
    fn a_docker_config_keeps_what_it_held_and_gains_the_registry() {
        let a = auth();
        let content = Content::DockerAuth {
            host_port: "sea.hub:5000".into(),
            auth: &a,
        };
        let fresh: serde_json::Value =
            serde_json::from_slice(&content.bytes(None).unwrap()).unwrap();
        assert_eq!(fresh["auths"]["sea.hub:5000"]["auth"], basic(&a), "{fresh}");
        let theirs = br#"{"auths":{"quay.io":{"auth":"eDp5"}},"credsStore":"pass"}"#;
        let merged: serde_json::Value =
            serde_json::from_slice(&content.bytes(Some(theirs)).unwrap()).unwrap();
        assert_eq!(merged["auths"]["quay.io"]["auth"], "eDp5");
        assert_eq!(merged["credsStore"], "pass");
        assert_eq!(merged["auths"]["sea.hub:5000"]["auth"], basic(&a));
        let err = content.bytes(Some(b"not json")).unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
        // The input hash covers the entry, not the person's part of the file.
        assert_eq!(content.digest().unwrap(), content.digest().unwrap());
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
