//! The rules a path of a rootfs tree must follow, and how a bad one is named in a message.
//!
//! A tree path is relative and `/`-separated, and every component is a plain name: not
//! empty, not `.` or `..`, valid UTF-8 and free of control characters. A newline or an
//! escape sequence in a file name would end up in `/usr/local/bin`, in logs and on the
//! operator's terminal, so such names are refused wherever a tree is read or received.

use super::ManifestError;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// `s` quoted with every control character, quote and backslash escaped (`"a\nb"`), so a
/// hostile name can be printed safely.
pub fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// Raw name bytes quoted like [`quote`], with bytes that are not UTF-8 as `\xNN`.
pub fn quote_bytes(bytes: &[u8]) -> String {
    format!("{:?}", OsStr::from_bytes(bytes))
}

/// The first control character of `s` (C0, DEL or C1), if any.
pub fn control_char(s: &str) -> Option<char> {
    s.chars().find(|c| c.is_control())
}

/// Checks that `path` is a clean relative path: not empty, not absolute, no `.`/`..`
/// components, no empty components, no control characters (NUL included). This is what
/// keeps a received tree inside its target directory and its names printable.
pub fn check_rel_path(path: &str) -> Result<(), ManifestError> {
    let bad = |reason| {
        Err(ManifestError::BadPath {
            path: path.to_string(),
            reason,
        })
    };
    if path.is_empty() {
        return bad("empty path");
    }
    if path.starts_with('/') {
        return bad("absolute path; paths must be relative to the rootfs");
    }
    if path.contains('\0') {
        return bad("contains a NUL byte");
    }
    if let Some(ch) = control_char(path) {
        return Err(ManifestError::ControlChar {
            path: path.to_string(),
            ch,
        });
    }
    for part in path.split('/') {
        match part {
            "" => return bad("empty path component (`//` or a trailing `/`)"),
            "." | ".." => return bad("`.` or `..` component; paths must stay inside the rootfs"),
            _ => {}
        }
    }
    Ok(())
}

/// The UTF-8 form of one file name read from disk; a name that is not UTF-8 is refused,
/// naming `dir/name` with the bad bytes escaped.
pub fn name_str<'a>(dir: &Path, name: &'a OsStr) -> Result<&'a str, ManifestError> {
    name.to_str().ok_or_else(|| ManifestError::NotUtf8 {
        path: quote_bytes(dir.join(name).as_os_str().as_bytes()),
    })
}

/// Joins a checked relative path onto a root without ever producing a path outside it.
pub fn join_rel(root: &Path, rel: &str) -> Result<PathBuf, ManifestError> {
    check_rel_path(rel)?;
    let joined = root.join(rel);
    // check_rel_path already excluded `..`; this guards against platform surprises.
    if joined
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err(ManifestError::BadPath {
            path: rel.to_string(),
            reason: "`..` component; paths must stay inside the rootfs",
        });
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_paths_are_checked() {
        for ok in ["a", "a/b", "etc/x.tmpl", "..a", "a..b", "ünïcode/ok"] {
            check_rel_path(ok).unwrap();
        }
        for (bad, needle) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("../x", "`..`"),
            ("a/../../x", "`..`"),
            ("a//b", "empty path component"),
            ("a/", "empty path component"),
            ("./a", "`.`"),
            ("a\0b", "NUL"),
        ] {
            let err = check_rel_path(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn control_characters_are_refused_and_printed_escaped() {
        for (bad, shown, code) in [
            ("bin/evil\nname", r#""bin/evil\nname""#, "U+000A"),
            ("etc/\u{1b}[31mred", r#""etc/\u{1b}[31mred""#, "U+001B"),
            ("a\rb", r#""a\rb""#, "U+000D"),
            ("tab\there", r#""tab\there""#, "U+0009"),
            ("del\u{7f}", r#""del\u{7f}""#, "U+007F"),
            ("c1\u{85}", r#""c1\u{85}""#, "U+0085"),
        ] {
            let err = check_rel_path(bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{shown}: ")) && err.contains(code),
                "{err}"
            );
            assert!(!err.contains('\n') && !err.contains('\u{1b}'), "{err}");
        }
    }

    #[test]
    fn names_that_are_not_utf8_are_named_escaped() {
        let err = name_str(Path::new("/r/etc"), OsStr::from_bytes(b"a\xffb"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#""/r/etc/a\xFFb": the name is not valid UTF-8; rename it"#
        );
        assert_eq!(name_str(Path::new("/r"), OsStr::new("ok")).unwrap(), "ok");
    }
}
