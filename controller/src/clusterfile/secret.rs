//! Passwords and key passphrases from the Clusterfile, held so they cannot leak by accident.

use std::fmt;

/// A secret string (an SSH password, a key passphrase). It prints as `***` in `Debug`, has
/// no `Display` and is not serializable, so it cannot reach a log line, an event or a file by
/// formatting; the one way to read it is [`Secret::expose`], at the point of use.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself; call it only where the value is handed to the SSH library or
    /// written to a child's stdin.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the allocation is freed, so the secret
        // does not linger in freed memory. Copies made by callers are theirs to handle.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&bytes);
    }
}

/// What a secret field says: a literal, or `${NAME}` to be read from the environment.
pub(super) fn env_reference(value: &str) -> Option<&str> {
    let name = value.strip_prefix("${")?.strip_suffix('}')?;
    installer_proto::env::is_valid_key(name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn env_references() {
        assert_eq!(env_reference("${SSH_PASS}"), Some("SSH_PASS"));
        assert_eq!(env_reference("${1X}"), None);
        assert_eq!(env_reference("a${X}"), None);
        assert_eq!(env_reference("$X"), None);
        assert_eq!(env_reference("${}"), None);
    }
}
