//! Host-key verification against a known_hosts file (plain and hashed entries, `[host]:port`
//! for other ports): a known key passes, an unknown one is refused unless the policy accepts
//! new keys (then it is recorded), a changed one is always refused with the line to remove.

use super::{HostKeyPolicy, SshError};
use russh::keys::{HashAlg, PublicKeyOrCertificate};
use std::sync::{Arc, Mutex};

/// Why the handshake was refused, read after `connect` returns.
#[derive(Clone, Default)]
pub(super) struct Verdict(Arc<Mutex<Option<SshError>>>);

impl Verdict {
    /// The refusal, if the key was refused.
    pub(super) fn take(&self, _label: &str) -> Option<SshError> {
        self.0.lock().ok().and_then(|mut v| v.take())
    }

    fn set(&self, e: SshError) {
        if let Ok(mut v) = self.0.lock() {
            *v = Some(e);
        }
    }
}

/// The russh client handler: it only checks the server key.
pub(super) struct Checker {
    host: String,
    port: u16,
    label: String,
    policy: HostKeyPolicy,
    verdict: Verdict,
}

/// How a host is named in messages: `host` on SSH's default port 22, else `host:port`.
pub(super) fn label(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

impl Checker {
    /// A checker for `host:port` under `policy`.
    pub(super) fn new(host: &str, port: u16, policy: &HostKeyPolicy) -> Checker {
        Checker {
            host: host.to_string(),
            port,
            label: label(host, port),
            policy: policy.clone(),
            verdict: Verdict::default(),
        }
    }

    /// A handle on the verdict, to read after the handshake.
    pub(super) fn verdict(&self) -> Verdict {
        self.verdict.clone()
    }

    fn check(&self, key: &PublicKeyOrCertificate) -> bool {
        let known_hosts = self.policy.known_hosts.display().to_string();
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                self.verdict.set(SshError::Connect {
                    host: self.label.clone(),
                    reason: "the host presented a certificate; host certificates are not supported, pin its plain host key in known_hosts".into(),
                });
                return false;
            }
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        match russh::keys::check_known_hosts_path(
            &self.host,
            self.port,
            key,
            &self.policy.known_hosts,
        ) {
            Ok(true) => true,
            Ok(false) if self.policy.accept_new => {
                match russh::keys::known_hosts::learn_known_hosts_path(
                    &self.host,
                    self.port,
                    key,
                    &self.policy.known_hosts,
                ) {
                    Ok(()) => {
                        tracing::info!(host = %self.label, %fingerprint, "recorded a new host key");
                        true
                    }
                    Err(e) => {
                        self.verdict.set(SshError::Connect {
                            host: self.label.clone(),
                            reason: format!("recording the host key in {known_hosts}: {e}"),
                        });
                        false
                    }
                }
            }
            Ok(false) => {
                self.verdict.set(SshError::UnknownHostKey {
                    host: self.label.clone(),
                    fingerprint,
                    known_hosts,
                });
                false
            }
            Err(russh::keys::Error::KeyChanged { line }) => {
                self.verdict.set(SshError::ChangedHostKey {
                    host: self.label.clone(),
                    fingerprint,
                    known_hosts,
                    line,
                });
                false
            }
            Err(e) => {
                self.verdict.set(SshError::Connect {
                    host: self.label.clone(),
                    reason: format!("reading {known_hosts}: {e}"),
                });
                false
            }
        }
    }
}

impl russh::client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(self.check(key))
    }
}
