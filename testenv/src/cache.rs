//! Where testenv keeps what it builds once and reuses: downloaded packages, base tarballs,
//! fixture pieces. Everything is keyed by a hash of its recipe, so a changed recipe builds
//! anew and an unchanged one is reused.

use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The cache root: `$INSTALLER_TESTENV_CACHE`, else `$XDG_CACHE_HOME/installer-testenv`,
/// else `~/.cache/installer-testenv`, else a directory under the system temp dir.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("INSTALLER_TESTENV_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("installer-testenv");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache").join("installer-testenv");
    }
    std::env::temp_dir().join("installer-testenv-cache")
}

/// A short, stable hash of the given recipe parts (12 hex digits), for cache keys and
/// image tags.
pub fn recipe_hash<I, S>(parts: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut hasher = Sha256::new();
    for part in parts {
        let part = part.as_ref();
        // Length-prefix each part so ("ab","c") and ("a","bc") hash differently.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    installer_proto::manifest::hex(&digest[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_hash_separates_parts() {
        assert_ne!(recipe_hash(["ab", "c"]), recipe_hash(["a", "bc"]));
        assert_eq!(recipe_hash(["x"]), recipe_hash(["x"]));
        assert_eq!(recipe_hash(["x"]).len(), 12);
    }
}
