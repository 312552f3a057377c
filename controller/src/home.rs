//! A leading `~` in a path the user wrote (the Clusterfile's `spec.image` and key paths,
//! `--known-hosts`): `~` alone is the home directory and `~/rest` a path below it, the same
//! way everywhere. `~user` is not expanded.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// What follows the home directory in `path` (`""` for `~` alone); `None` when `path` does
/// not start with `~` or `~/`.
pub(crate) fn rest(path: &str) -> Option<&str> {
    if path == "~" {
        Some("")
    } else {
        path.strip_prefix("~/")
    }
}

/// `rest` (from [`rest`]) below `home`.
pub(crate) fn join(home: impl AsRef<OsStr>, rest: &str) -> PathBuf {
    let home = Path::new(home.as_ref());
    if rest.is_empty() {
        home.to_path_buf()
    } else {
        home.join(rest)
    }
}

/// `path` with a leading `~` replaced by `$HOME`; `None` when it has none or `HOME` is unset.
pub(crate) fn expand_env(path: &str) -> Option<PathBuf> {
    let rest = rest(path)?;
    std::env::var_os("HOME").map(|home| join(home, rest))
}

/// A directory of installer's own per the XDG base directories: `$<var>/installer` when
/// `var` is set, else `~/<home_rel>/installer`, else `<tmp>/installer-<fallback>`.
pub(crate) fn xdg_dir(var: &str, home_rel: &str, fallback: &str) -> PathBuf {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(x) = non_empty(var) {
        PathBuf::from(x).join("installer")
    } else if let Some(h) = non_empty("HOME") {
        PathBuf::from(h).join(home_rel).join("installer")
    } else {
        std::env::temp_dir().join(format!("installer-{fallback}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_leading_tilde_component_is_the_home_directory() {
        assert_eq!(rest("~"), Some(""));
        assert_eq!(rest("~/.ssh/id_rsa"), Some(".ssh/id_rsa"));
        for plain in ["~user/x", "a/~/b", "/abs", "rel", ""] {
            assert_eq!(rest(plain), None, "{plain}");
        }
        assert_eq!(join("/home/u", ""), PathBuf::from("/home/u"));
        assert_eq!(join("/home/u", "a/b"), PathBuf::from("/home/u/a/b"));
    }
}
