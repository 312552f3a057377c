//! Shared by the SSH-layer suites (container hosts and the loopback sshd): key auth, a
//! host-key policy and short timeouts.

#![allow(dead_code, missing_docs)] // test support

use installer::ssh::{AuthConfig, ConnectOptions, HostKeyPolicy};
use std::path::Path;
use std::time::Duration;

/// Auth with exactly this private key.
pub(crate) fn key_auth(key: &Path) -> AuthConfig {
    AuthConfig {
        private_key: Some(key.to_path_buf()),
        ..AuthConfig::default()
    }
}

/// Host keys checked against `known_hosts`, optionally recording unknown ones.
pub(crate) fn policy(known_hosts: &Path, accept_new: bool) -> HostKeyPolicy {
    HostKeyPolicy {
        known_hosts: known_hosts.to_path_buf(),
        accept_new,
    }
}

/// Timeouts short enough for tests, long enough for a loaded CI machine.
pub(crate) fn opts() -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(3),
        keepalive: Duration::from_secs(5),
    }
}
