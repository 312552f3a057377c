//! What can go wrong on the SSH side, written for the operator.

/// An SSH failure; every variant names the host.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SshError {
    /// Nothing answered in time.
    #[error(
        "{host}: timed out waiting for {waited_for}; check the address, the port and firewalls"
    )]
    Timeout {
        /// `host[:port]`.
        host: String,
        /// What was waited for.
        waited_for: String,
    },
    /// The connection failed.
    #[error("{host}: cannot connect: {reason}")]
    Connect {
        /// `host[:port]`.
        host: String,
        /// The TCP or SSH handshake error (refused, timed out, no common algorithm, …).
        reason: String,
    },
    /// The host key is not in known_hosts.
    #[error(
        "{host}: host key {fingerprint} is not in {known_hosts}; check it out of band, then run again with --accept-new-host-keys to record it"
    )]
    UnknownHostKey {
        /// `host[:port]`.
        host: String,
        /// `SHA256:…`.
        fingerprint: String,
        /// The file checked.
        known_hosts: String,
    },
    /// The host key differs from the recorded one.
    #[error(
        "{host}: HOST KEY CHANGED: the host now presents {fingerprint}, which differs from line {line} of {known_hosts}. This may be an attack; if the host was reinstalled, remove that line and check the new key out of band"
    )]
    ChangedHostKey {
        /// `host[:port]`.
        host: String,
        /// The new key's fingerprint.
        fingerprint: String,
        /// The file.
        known_hosts: String,
        /// The line to remove.
        line: usize,
    },
    /// Every authentication method failed.
    #[error("{host}: authentication as {user} failed; tried: {tried}")]
    Auth {
        /// `host[:port]`.
        host: String,
        /// Login user.
        user: String,
        /// The methods tried, in order.
        tried: String,
    },
    /// sudo refused.
    #[error("{host}: sudo as {user} failed: {reason}")]
    Sudo {
        /// `host[:port]`.
        host: String,
        /// Login user.
        user: String,
        /// What sudo said (a password is needed, the user is not in sudoers, …).
        reason: String,
    },
    /// Something on the established connection failed.
    #[error("{host}: {reason}")]
    Remote {
        /// `host[:port]`.
        host: String,
        /// What went wrong on the session after login (channel refused, command failed).
        reason: String,
    },
}
