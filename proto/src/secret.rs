//! Secret strings (SSH passwords, key passphrases, the registry's key and password), held so
//! they cannot leak by accident.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret string. It prints as `***` in `Debug` and has no `Display`, so it cannot reach a
/// log line or an event by formatting; the one way to read it is [`Secret::expose`], at the
/// point of use. It serializes as the plain string only so that a plan can carry it to the
/// agent over the session's channel: no file or event type of the product holds one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself; call it only where the value is handed to the SSH library, written
    /// to a child's stdin or to the one file a runtime reads it from.
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
    fn the_wire_form_is_the_plain_string() {
        let s = Secret::new("k\"ey");
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(text, r#""k\"ey""#);
        assert_eq!(
            serde_json::from_str::<Secret>(&text).unwrap().expose(),
            "k\"ey"
        );
    }
}
