//! Authentication: the configured key (with its passphrase), else the default keys, then
//! the ssh-agent, then the password. A failure lists every method tried, never a secret.

use super::{SshError, Target, known_hosts::Checker};
use russh::client::Handle;
use russh::keys::PrivateKeyWithHashAlg;
use std::path::PathBuf;
use std::sync::Arc;

fn default_keys() -> Vec<PathBuf> {
    let Some(home) = std::env::var_os("HOME") else {
        return Vec::new();
    };
    let ssh = PathBuf::from(home).join(".ssh");
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .into_iter()
        .map(|n| ssh.join(n))
        .filter(|p| p.is_file())
        .collect()
}

/// Tries the methods in order until one succeeds.
pub(super) async fn authenticate(
    handle: &mut Handle<Checker>,
    t: &Target,
    label: &str,
) -> Result<(), SshError> {
    let mut tried = Vec::new();
    let keys = match &t.auth.private_key {
        Some(k) => vec![k.clone()],
        None => default_keys(),
    };
    for path in keys {
        let passphrase = t.auth.key_passphrase.as_ref().map(|s| s.expose());
        let key = match russh::keys::load_secret_key(&path, passphrase) {
            Ok(k) => k,
            Err(russh::keys::Error::KeyIsEncrypted) => {
                tried.push(format!(
                    "publickey ({}: encrypted, and no pkPasswd given)",
                    path.display()
                ));
                continue;
            }
            Err(e) => {
                tried.push(format!("publickey ({}: unreadable: {e})", path.display()));
                continue;
            }
        };
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .ok()
            .flatten()
            .flatten();
        let result = handle
            .authenticate_publickey(&t.user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
            .await
            .map_err(|e| conn_err(label, e))?;
        if result.success() {
            return Ok(());
        }
        tried.push(format!("publickey ({})", path.display()));
    }
    if t.auth.use_agent && std::env::var_os("SSH_AUTH_SOCK").is_some() {
        match russh::keys::agent::client::AgentClient::connect_env().await {
            Ok(mut agent) => {
                let ids = agent.request_identities().await.unwrap_or_default();
                for id in &ids {
                    let key = id.public_key().into_owned();
                    let hash = handle
                        .best_supported_rsa_hash()
                        .await
                        .ok()
                        .flatten()
                        .flatten();
                    if let Ok(r) = handle
                        .authenticate_publickey_with(&t.user, key, hash, &mut agent)
                        .await
                        && r.success()
                    {
                        return Ok(());
                    }
                }
                tried.push(format!("ssh-agent ({} identities)", ids.len()));
            }
            Err(e) => tried.push(format!("ssh-agent (unreachable: {e})")),
        }
    }
    if let Some(password) = &t.auth.password {
        let result = handle
            .authenticate_password(&t.user, password.expose())
            .await
            .map_err(|e| conn_err(label, e))?;
        if result.success() {
            return Ok(());
        }
        tried.push("password".into());
    }
    if tried.is_empty() {
        tried.push("nothing: no key (spec.ssh.pk, ~/.ssh/id_ed25519, ~/.ssh/id_rsa), no ssh-agent and no password".into());
    }
    Err(SshError::Auth {
        host: label.to_string(),
        user: t.user.clone(),
        tried: tried.join(", "),
    })
}

fn conn_err(label: &str, e: russh::Error) -> SshError {
    SshError::Connect {
        host: label.to_string(),
        reason: e.to_string(),
    }
}
