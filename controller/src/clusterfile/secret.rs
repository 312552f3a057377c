//! Passwords and key passphrases from the Clusterfile: written literally or as `${NAME}`,
//! read from the controller's environment, and held as a [`Secret`].

pub use installer_proto::secret::Secret;

/// What a secret field says: a literal, or `${NAME}` to be read from the environment.
pub(super) fn env_reference(value: &str) -> Option<&str> {
    let name = value.strip_prefix("${")?.strip_suffix('}')?;
    installer_proto::env::is_valid_key(name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references() {
        assert_eq!(env_reference("${SSH_PASS}"), Some("SSH_PASS"));
        assert_eq!(env_reference("${1X}"), None);
        assert_eq!(env_reference("a${X}"), None);
        assert_eq!(env_reference("$X"), None);
        assert_eq!(env_reference("${}"), None);
    }
}
