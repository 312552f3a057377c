//! The tree an unpack writes into, and the OCI layer rules that change what lower layers
//! left in it: `.wh.<name>` removes `<name>` from the lower layers, `.wh..wh..opq` hides
//! everything the lower layers put in its directory, and an entry may replace a lower
//! layer's directory. Whiteouts apply to lower layers only (image-spec, "Whiteouts"): a
//! path the same layer wrote is not removed by its `.wh.` entry, and an opaque marker keeps
//! what its layer put in the directory, before or after the marker.
//!
//! Every removal goes through the tree's `cap_std` handle and never follows a link, and the
//! whiteout's own path passed the same checks as any entry before it gets here.

use cap_std::fs::Dir;
use installer_proto::manifest::check_rel_path;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;

/// A symlink an archive or layer created, kept to check where it leads once the whole tree
/// is there.
pub(crate) struct Planted {
    /// The archive (or archive and layer) that holds it.
    pub(crate) archive: PathBuf,
    /// Its entry name as stored.
    pub(crate) raw: String,
    /// Its target.
    pub(crate) target: String,
}

/// The tree being written: its directory handle, the symlinks in it (nothing is written
/// below them), and the directory modes to set at the end.
pub(crate) struct Tree {
    pub(crate) dir: Dir,
    pub(crate) links: BTreeMap<String, Planted>,
    pub(crate) dirs: BTreeMap<String, u32>,
}

/// A whiteout entry of a layer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Whiteout {
    /// `<dir>/.wh.<name>`: remove `path` (= `<dir>/<name>`).
    Remove {
        /// What to remove.
        path: String,
    },
    /// `<dir>/.wh..wh..opq`: hide what lower layers put in `dir` (`""` for the top).
    Opaque {
        /// The directory.
        dir: String,
    },
    /// Other `.wh..wh.` names: aufs bookkeeping, not part of the tree.
    Meta,
}

const PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// The whiteout `rel` (a checked relative path) stands for, if it is one; an error (the
/// reason) when it would reach outside its own directory.
pub(crate) fn parse(rel: &str) -> Result<Option<Whiteout>, String> {
    let (dir, base) = rel.rsplit_once('/').unwrap_or(("", rel));
    if base == OPAQUE {
        return Ok(Some(Whiteout::Opaque {
            dir: dir.to_string(),
        }));
    }
    if rel
        .split('/')
        .any(|c| c.starts_with(".wh..wh.") && c != OPAQUE)
    {
        return Ok(Some(Whiteout::Meta));
    }
    let Some(name) = base.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!(
            "whiteout of {name:?} would remove something outside its own directory"
        ));
    }
    let path = if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    };
    check_rel_path(&path).map_err(|e| format!("whiteout of {name:?}: {e}"))?;
    Ok(Some(Whiteout::Remove { path }))
}

impl Tree {
    /// Applies a whiteout; `this_layer` is what the current layer wrote so far.
    pub(crate) fn whiteout(
        &mut self,
        w: &Whiteout,
        this_layer: &BTreeSet<String>,
    ) -> io::Result<()> {
        match w {
            Whiteout::Remove { path } => {
                if this_layer.contains(path) {
                    return Ok(());
                }
                self.remove(path)
            }
            Whiteout::Opaque { dir } => {
                if !dir.is_empty() {
                    self.dir.create_dir_all(dir)?;
                }
                self.clear_lower(dir, this_layer)
            }
            Whiteout::Meta => Ok(()),
        }
    }

    /// Makes room at `rel` for a new non-directory: removes what is there, a directory only
    /// when `replace_dir` (a lower layer's; one the same stream made is an error, since
    /// replacing it would drop what the stream put in it).
    pub(crate) fn clear(&mut self, rel: &str, replace_dir: bool) -> io::Result<()> {
        match self.dir.symlink_metadata(rel) {
            Ok(m) if m.is_dir() && !replace_dir => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a directory of the same name is already in the archive",
            )),
            Ok(_) => self.remove(rel),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes `rel` (a whole directory, or a file or link itself, never what a link leads
    /// to) and forgets the links and directory modes recorded at or below it.
    fn remove(&mut self, rel: &str) -> io::Result<()> {
        match self.dir.symlink_metadata(rel) {
            Ok(m) if m.is_dir() => self.dir.remove_dir_all(rel)?,
            Ok(_) => self.dir.remove_file(rel)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        forget(&mut self.links, rel);
        forget(&mut self.dirs, rel);
        Ok(())
    }

    /// Removes what lower layers put below `dir`, keeping what this layer wrote.
    fn clear_lower(&mut self, dir: &str, this_layer: &BTreeSet<String>) -> io::Result<()> {
        let entries = if dir.is_empty() {
            self.dir.entries()?
        } else {
            self.dir.read_dir(dir)?
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry?;
            names.push((entry.file_name(), entry.file_type()?.is_dir()));
        }
        for (name, is_dir) in names {
            // Every name in the tree came through the UTF-8 check of an entry.
            let name = name.to_string_lossy();
            let child = if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            };
            if !this_layer.contains(&child) {
                self.remove(&child)?;
            } else if is_dir {
                self.clear_lower(&child, this_layer)?;
            }
        }
        Ok(())
    }
}

/// Drops `rel` and everything below it from a map keyed by tree path.
fn forget<V>(map: &mut BTreeMap<String, V>, rel: &str) {
    map.remove(rel);
    let prefix = format!("{rel}/");
    let below: Vec<String> = map
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in below {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whiteout_names_parse_and_escapes_are_refused() {
        assert_eq!(parse("etc/a"), Ok(None));
        assert_eq!(
            parse("etc/.wh.a"),
            Ok(Some(Whiteout::Remove {
                path: "etc/a".into()
            }))
        );
        assert_eq!(
            parse(".wh.top"),
            Ok(Some(Whiteout::Remove { path: "top".into() }))
        );
        assert_eq!(
            parse("etc/.wh..wh..opq"),
            Ok(Some(Whiteout::Opaque { dir: "etc".into() }))
        );
        assert_eq!(parse(".wh..wh.plnk"), Ok(Some(Whiteout::Meta)));
        for escaping in ["etc/.wh...", ".wh...", "etc/.wh.", "a/.wh.."] {
            let err = parse(escaping).unwrap_err();
            assert!(
                err.contains("outside its own directory"),
                "{escaping}: {err}"
            );
        }
    }

    #[test]
    fn forget_drops_a_path_and_what_is_below_only() {
        let mut m: BTreeMap<String, u32> = ["a", "a/b", "a/b/c", "a-b", "ab", "b"]
            .iter()
            .map(|k| (k.to_string(), 0))
            .collect();
        forget(&mut m, "a");
        assert_eq!(m.keys().collect::<Vec<_>>(), ["a-b", "ab", "b"]);
    }
}
