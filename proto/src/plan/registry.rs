//! The local registry as one host sees it: where it is, whether the host runs it, and how
//! the host reaches it — the cluster CA its runtimes trust, the server certificate and key a
//! registry host serves with, and the credentials of an authenticated registry (SPEC §2).
//!
//! Where each runtime reads that material is fixed here, once, for the agent that places it
//! and for the docs that name it: docker reads `/etc/docker/certs.d/<domain>:<port>/ca.crt`,
//! containerd `/etc/containerd/certs.d/<domain>:<port>/` (`ca.crt` and `hosts.toml`; a
//! containerd configured with docker's `certs.d` as its `config_path`, as sealer's images
//! are, reads docker's `ca.crt` the same way), and the registry itself
//! `<rootfs>/certs/<domain>.crt|.key`, as sealer's `init-registry.sh` mounts them.

use super::PlanError;
use crate::secret::Secret;
use serde::{Deserialize, Serialize};

/// The local registry as this host sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryPlan {
    /// Domain, default [`super::DEFAULT_REGISTRY_DOMAIN`].
    pub domain: String,
    /// Port, default [`super::DEFAULT_REGISTRY_PORT`].
    pub port: u16,
    /// Whether this host runs `sealer-registry` (masters when `ha`, else master0).
    pub deploy: bool,
    /// The registry's TLS material; `None` when the registry serves plain HTTP
    /// (`insecure: true`). Absent from such plans, so they read and hash as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RegistryTls>,
    /// The registry's credentials (`username`/`password`): registry hosts serve htpasswd
    /// auth with them, every host's runtimes and kubelet pull with them. `None`: no auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<RegistryAuth>,
}

/// The registry's credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAuth {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Secret,
}

/// The most bytes of a registry password bcrypt hashes; a longer one would be cut silently.
pub const MAX_PASSWORD_BYTES: usize = 72;

impl RegistryAuth {
    /// Checks that the credentials fit an htpasswd line and a docker `auth` value: a
    /// user name without `:`, blanks or control characters, a password of at most
    /// [`MAX_PASSWORD_BYTES`] bytes without control characters.
    pub fn check(&self) -> Result<(), PlanError> {
        check_username(&self.username).map_err(PlanError::BadRegistry)?;
        check_password(self.password.expose()).map_err(PlanError::BadRegistry)
    }
}

/// Why `username` cannot be a registry user name (see [`RegistryAuth::check`]).
pub fn check_username(u: &str) -> Result<(), String> {
    if u.is_empty()
        || u.chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "user name {u:?} is invalid: use letters, digits and punctuation other than ':'"
        ));
    }
    Ok(())
}

/// Why `password` cannot be a registry password (see [`RegistryAuth::check`]); the message
/// does not quote it.
pub fn check_password(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > MAX_PASSWORD_BYTES || p.chars().any(char::is_control) {
        return Err(format!(
            "the password must be 1 to {MAX_PASSWORD_BYTES} bytes without control characters"
        ));
    }
    Ok(())
}

/// What a host receives of the registry's TLS material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryTls {
    /// The cluster CA (PEM), trusted by every host's runtimes.
    pub ca_pem: String,
    /// The registry's certificate and key: on registry hosts only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerTls>,
}

/// The certificate and key a registry host serves with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerTls {
    /// The server certificate (PEM), issued by the cluster CA.
    pub cert_pem: String,
    /// Its private key (PEM).
    pub key_pem: Secret,
}

/// What the registry's TLS material most takes: a PEM certificate or key is a few KiB; the
/// bound keeps a damaged plan from writing megabytes into trust directories.
const MAX_PEM_BYTES: usize = 64 << 10;

impl RegistryPlan {
    /// `<domain>:<port>`, the name runtimes key registries by.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.domain, self.port)
    }

    /// The URL its `/v2/` answers at: `https` unless the registry is insecure.
    pub fn v2_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/v2/", self.host_port())
    }

    /// Checks what becomes host paths and file contents: the domain is one host name (it
    /// names directories under `certs.d` and files under `certs/`), the port is not 0, the
    /// PEM texts are PEM of a sane size, and only a registry host carries the key.
    pub fn check(&self) -> Result<(), PlanError> {
        if !is_domain(&self.domain) {
            return Err(PlanError::BadRegistryDomain(self.domain.clone()));
        }
        if self.port == 0 {
            return Err(PlanError::BadRegistry("port 0".into()));
        }
        if let Some(auth) = &self.auth {
            auth.check()?;
        }
        let Some(tls) = &self.tls else {
            return Ok(());
        };
        check_pem("the CA", &tls.ca_pem, "CERTIFICATE")?;
        if let Some(server) = &tls.server {
            if !self.deploy {
                return Err(PlanError::BadRegistry(
                    "a host that does not run the registry was given its key".into(),
                ));
            }
            check_pem("the server certificate", &server.cert_pem, "CERTIFICATE")?;
            check_pem("the server key", server.key_pem.expose(), "PRIVATE KEY")?;
        } else if self.deploy {
            return Err(PlanError::BadRegistry(
                "a registry host was given no server certificate".into(),
            ));
        }
        Ok(())
    }
}

/// Whether `name` is a host name usable as one path component: labels of letters, digits
/// and `-`, joined by single dots.
fn is_domain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn check_pem(what: &str, text: &str, kind: &str) -> Result<(), PlanError> {
    let ok = text.len() <= MAX_PEM_BYTES
        && text.trim_start().starts_with("-----BEGIN ")
        && text.contains(kind)
        && !text.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(PlanError::BadRegistry(format!(
            "{what} is not a PEM {kind}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(deploy: bool, server: bool) -> RegistryPlan {
        RegistryPlan {
            domain: "sea.hub".into(),
            port: 5000,
            deploy,
            tls: Some(RegistryTls {
                ca_pem: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into(),
                server: server.then(|| ServerTls {
                    cert_pem: "-----BEGIN CERTIFICATE-----\ny\n-----END CERTIFICATE-----\n".into(),
                    key_pem: Secret::new(
                        "-----BEGIN PRIVATE KEY-----\nz\n-----END PRIVATE KEY-----\n",
                    ),
                }),
            }),
            auth: None,
        }
    }

    #[test]
    fn credentials_must_fit_htpasswd_and_docker_auth() {
        let auth = |u: &str, p: &str| RegistryAuth {
            username: u.into(),
            password: Secret::new(p),
        };
        auth("admin", "pa ss:\"w$(rd)").check().unwrap();
        for (u, p) in [
            ("", "x"),
            ("a:b", "x"),
            ("a b", "x"),
            ("a", ""),
            ("a", "line\nbreak"),
            ("a", &"x".repeat(73)),
        ] {
            assert!(auth(u, p).check().is_err(), "{u:?} {p:?}");
        }
        assert!(!format!("{:?}", auth("a", "hunter2")).contains("hunter2"));
    }

    #[test]
    fn the_key_goes_to_registry_hosts_only() {
        plan(true, true).check().unwrap();
        plan(false, false).check().unwrap();
        assert!(plan(false, true).check().is_err(), "a node with the key");
        assert!(
            plan(true, false).check().is_err(),
            "a registry host without it"
        );
    }

    #[test]
    fn names_that_become_paths_are_checked() {
        for bad in ["", "a/b", "..", ".sea", "sea..hub", "-a.hub", "a b", "x:1"] {
            let mut p = plan(false, false);
            p.domain = bad.into();
            assert_eq!(
                p.check(),
                Err(PlanError::BadRegistryDomain(bad.into())),
                "{bad:?}"
            );
        }
        let mut p = plan(false, false);
        p.tls.as_mut().unwrap().ca_pem = "not pem".into();
        assert!(p.check().is_err());
    }

    #[test]
    fn urls_follow_tls() {
        let mut p = plan(false, false);
        assert_eq!(p.v2_url(), "https://sea.hub:5000/v2/");
        p.tls = None;
        assert_eq!(p.v2_url(), "http://sea.hub:5000/v2/");
        assert_eq!(p.host_port(), "sea.hub:5000");
    }

    #[test]
    fn a_plain_plan_has_no_tls_field_on_the_wire() {
        let mut p = plan(false, false);
        p.tls = None;
        let text = serde_json::to_string(&p).unwrap();
        assert!(!text.contains("tls"), "{text}");
        let key = serde_json::to_string(&plan(true, true)).unwrap();
        assert!(key.contains("PRIVATE KEY"), "the key travels in the plan");
        assert!(
            !format!("{:?}", plan(true, true)).contains("PRIVATE KEY"),
            "but never in Debug"
        );
    }
}
