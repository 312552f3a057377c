//! Symbolic links directly in the rootfs's `bin/`. Rootfs often ship aliases there
//! (`bin/kubectl-convert -> kubectl`, `bin/crictl -> ../bin/crictl-v1.26`); install-bin
//! puts each into `/usr/local/bin` as a link to the same name, next to the file it names.
//! Only links that lead, through `bin/` alone, to a regular file directly in `bin/` are
//! installed: anything else would make `/usr/local/bin/<name>` point somewhere the step
//! did not install (the host's rootfs copy, or a path outside any rootfs), so it is refused
//! when the plan is validated, before anything changes on a host.

use crate::manifest::{Entry, EntryKind, Manifest};

/// The rootfs directory whose entries go to `/usr/local/bin`.
pub const BIN: &str = "bin";

/// How many links a chain in `bin/` may have before it counts as a loop (Linux's
/// `MAXSYMLINKS`).
const MAX_HOPS: usize = 40;

/// The name in `bin/` that the link `entry` (directly in `bin/`) names — the target its
/// host copy gets — after checking that the link, and every link after it, stays in `bin/`
/// and ends at a regular file. `Err` is the message for the operator.
pub fn target_name(manifest: &Manifest, entry: &Entry) -> Result<String, String> {
    let EntryKind::Symlink { target } = &entry.kind else {
        return Err(format!("{} is not a symlink", entry.path));
    };
    let first = name_in_bin(manifest, &entry.path, target)?;
    let mut name = first.clone();
    for _ in 0..MAX_HOPS {
        let path = format!("{BIN}/{name}");
        match manifest.get(&path).map(|e| &e.kind) {
            Some(EntryKind::File { .. }) => return Ok(first),
            Some(EntryKind::Symlink { target }) => name = name_in_bin(manifest, &path, target)?,
            Some(EntryKind::Dir) => {
                return Err(refusal(
                    &entry.path,
                    target,
                    &format!("{path} is a directory"),
                ));
            }
            None => {
                return Err(refusal(
                    &entry.path,
                    target,
                    &format!("{path} is not in the rootfs"),
                ));
            }
        }
    }
    Err(refusal(
        &entry.path,
        target,
        &format!("more than {MAX_HOPS} links follow each other (a loop)"),
    ))
}

/// Checks every link directly in `bin/` (see [`target_name`]).
pub fn check(manifest: &Manifest) -> Result<(), String> {
    for entry in manifest.entries.iter().filter(|e| is_bin_link(e)) {
        target_name(manifest, entry)?;
    }
    Ok(())
}

/// Whether `entry` is a symlink directly in `bin/`.
pub fn is_bin_link(entry: &Entry) -> bool {
    matches!(entry.kind, EntryKind::Symlink { .. })
        && entry
            .path
            .strip_prefix("bin/")
            .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// The entry of `bin/` that the link at `link` (in `bin/`) with `target` names, resolved
/// component by component: every directory passed must be a real directory of the tree
/// (not another link), so the name found is what the kernel will find.
fn name_in_bin(manifest: &Manifest, link: &str, target: &str) -> Result<String, String> {
    if target.starts_with('/') {
        return Err(refusal(link, target, "the target is absolute"));
    }
    let mut at: Vec<&str> = vec![BIN];
    let parts: Vec<&str> = target.split('/').filter(|p| !p.is_empty()).collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Err(refusal(link, target, "the target is empty"));
    };
    for part in dirs {
        match *part {
            "." => {}
            ".." => {
                if at.pop().is_none() {
                    return Err(refusal(link, target, "it leads outside the rootfs"));
                }
            }
            name => {
                at.push(name);
                let path = at.join("/");
                if !matches!(manifest.get(&path).map(|e| &e.kind), Some(EntryKind::Dir)) {
                    return Err(refusal(
                        link,
                        target,
                        &format!("{path} is not a directory of the rootfs"),
                    ));
                }
            }
        }
    }
    match *last {
        "." | ".." => Err(refusal(link, target, "it names a directory")),
        name if at == [BIN] => Ok(name.to_string()),
        name => {
            at.push(name);
            Err(refusal(
                link,
                target,
                &format!("it leads to {}, outside bin/", at.join("/")),
            ))
        }
    }
}

fn refusal(link: &str, target: &str, why: &str) -> String {
    format!(
        "{link} -> {target:?} is refused: {why}; a link in bin/ is installed into /usr/local/bin only when it names another file in bin/ — put the file itself in bin/, or make the link name one there"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(path: &str) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o755,
            kind: EntryKind::File {
                size: 1,
                sha256: "0".repeat(64),
            },
        }
    }

    fn dir(path: &str) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o755,
            kind: EntryKind::Dir,
        }
    }

    fn link(path: &str, target: &str) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o777,
            kind: EntryKind::Symlink {
                target: target.into(),
            },
        }
    }

    fn manifest(extra: Vec<Entry>) -> Manifest {
        let mut entries = vec![
            dir("bin"),
            file("bin/kubectl"),
            dir("bin/sub"),
            file("bin/sub/tool"),
            dir("cri"),
            file("cri/crictl"),
            link("up", "bin"),
        ];
        entries.extend(extra);
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Manifest { entries }
    }

    #[test]
    fn links_to_files_in_bin_name_them() {
        for (target, name) in [
            ("kubectl", "kubectl"),
            ("./kubectl", "kubectl"),
            ("../bin/kubectl", "kubectl"),
            ("sub/../kubectl", "kubectl"),
            ("k2", "k2"),
        ] {
            let m = manifest(vec![link("bin/k", target), link("bin/k2", "kubectl")]);
            let entry = m.get("bin/k").unwrap().clone();
            assert_eq!(target_name(&m, &entry).unwrap(), name, "{target}");
            check(&m).unwrap();
        }
    }

    #[test]
    fn links_anywhere_else_are_refused_with_the_reason() {
        for (target, why) in [
            ("/etc/shadow", "the target is absolute"),
            ("/usr/local/bin/kubectl", "the target is absolute"),
            ("../cri/crictl", "it leads to cri/crictl, outside bin/"),
            ("../../etc/shadow", "it leads outside the rootfs"),
            ("sub/tool", "it leads to bin/sub/tool, outside bin/"),
            ("sub", "bin/sub is a directory"),
            ("missing", "bin/missing is not in the rootfs"),
            ("..", "it names a directory"),
            // Through another link: what the kernel finds there is not what the text says.
            ("../up/kubectl", "up is not a directory of the rootfs"),
            ("loop", "more than 40 links follow each other"),
            ("out", "bin/out -> \"../cri/crictl\" is refused"),
        ] {
            let m = manifest(vec![
                link("bin/k", target),
                link("bin/loop", "loop2"),
                link("bin/loop2", "loop"),
                link("bin/out", "../cri/crictl"),
            ]);
            let entry = m.get("bin/k").unwrap().clone();
            let err = target_name(&m, &entry).unwrap_err();
            assert!(err.contains(why), "{target}: {err}");
            assert!(err.starts_with("bin/"), "{err}");
            assert!(check(&m).is_err());
        }
    }

    #[test]
    fn only_links_directly_in_bin_count() {
        assert!(is_bin_link(&link("bin/k", "kubectl")));
        assert!(!is_bin_link(&link("bin/sub/k", "tool")));
        assert!(!is_bin_link(&link("etc/k", "x")));
        assert!(!is_bin_link(&file("bin/kubectl")));
    }
}
