//! The rootfs contract (SPEC §3): how a host's *merged rootfs* is formed from the image
//! directory, its per-architecture subtree and the user's overlays, which of its files are
//! templates, and the check (with [`crate::elf`]) that keeps a binary of the wrong machine
//! off a host. Both sides use it: the controller to build
//! what it ships, the agent when run by hand on a rootfs directory.

use crate::elf::elf_machine_of;
use crate::manifest::{
    self, DirTree, Entry, EntryKind, LinkError, Lookup, Manifest, ManifestError, Node, paths,
};
use cap_std::fs::Dir;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The arch subtree names are part of the rootfs layout; they are defined with the
/// machines they stand for.
pub use crate::elf::{ARCH_DIRS, arch_dir_for};

/// The top-level directories whose `*.tmpl` files are rendered (SPEC §3, §4).
pub const TEMPLATE_DIRS: [&str; 3] = ["etc/", "statics/", "manifests/"];

/// Whether the tree path of a regular file is a template the render step renders: a
/// `*.tmpl` under one of [`TEMPLATE_DIRS`].
pub fn is_template(path: &str) -> bool {
    path.ends_with(".tmpl") && TEMPLATE_DIRS.iter().any(|d| path.starts_with(d))
}

/// Paths of a host's rootfs copy the product itself writes (SPEC §3): the registry's TLS
/// material (`certs/`) and its htpasswd file. A rootfs's own files there are not shipped
/// (what the product writes would replace them on every apply), and placing the rootfs
/// leaves what is there alone.
pub const PRODUCT_WRITTEN: [&str; 2] = ["certs", "etc/registry_htpasswd"];

/// Whether tree path `path` is one of [`PRODUCT_WRITTEN`] or lies under one.
pub fn is_product_written(path: &str) -> bool {
    PRODUCT_WRITTEN
        .iter()
        .any(|p| path == *p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/')))
}

/// One path of a merged tree with where its content comes from.
#[derive(Clone, Debug)]
pub struct Sourced {
    /// The manifest entry (path relative to the merged tree).
    pub entry: Entry,
    /// The absolute path on the local disk holding this entry's content.
    pub source: PathBuf,
}

/// A merged rootfs: base, then the host's arch subtree, then overlays, later layers winning
/// per path.
#[derive(Clone, Debug, Default)]
pub struct MergedTree {
    entries: BTreeMap<String, Sourced>,
}

/// Why a merged tree could not be formed.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A layer directory does not exist or is not a directory.
    #[error("{0}: not a directory; give the path of an unpacked rootfs (or an overlay directory)")]
    NotADirectory(PathBuf),
    /// The tree is malformed.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A link of the tree does not resolve inside it.
    #[error("{source} (file {})", file.display())]
    Link {
        /// The link on the local disk.
        file: PathBuf,
        /// Where it leads and why that is refused (boxed: it carries the whole chain).
        #[source]
        source: Box<LinkError>,
    },
    /// `rootfs`, `amd64` or `arm64` is a link to something that is not a directory of the
    /// image.
    #[error(
        "{}: a link to {}, which is not a directory inside the rootfs; the rootfs/, amd64/ and arm64/ subtrees must be directories (or links to directories) inside it",
        link.display(),
        manifest::quote(target)
    )]
    LayerNotADirectory {
        /// The link.
        link: PathBuf,
        /// Its target.
        target: String,
    },
    /// A `bin/` binary is built for another machine.
    #[error(
        "{path}: built for {found}, but the host is {host}; put it under {arch_dir}/bin/ (per-architecture subtree) or ship the {host} build"
    )]
    WrongMachine {
        /// Path inside the merged tree.
        path: String,
        /// The binary's machine.
        found: String,
        /// The host's `uname -m`.
        host: String,
        /// The arch subtree the binary belongs in.
        arch_dir: String,
    },
    /// Reading failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// The directory that is the base layer of an image directory: `DIR/rootfs` when present
/// (sealer's image layout), else `DIR` itself. A `rootfs` link is followed only as far as
/// it stays inside `DIR`.
pub fn base_dir(image_dir: &Path) -> Result<PathBuf, RootfsError> {
    let image = open_tree(image_dir)?;
    Ok(match subtree(&image, "rootfs")? {
        Some(rel) => image_dir.join(rel),
        None => image_dir.to_path_buf(),
    })
}

/// The per-architecture subtree `DIR/<arch>` of an image directory, when there is one. A
/// link is followed only as far as it stays inside `DIR` (a link that leaves it is an
/// error naming the link and where it leads).
pub fn arch_subtree(image_dir: &Path, arch: &str) -> Result<Option<PathBuf>, RootfsError> {
    Ok(subtree(&open_tree(image_dir)?, arch)?.map(|rel| image_dir.join(rel)))
}

fn open_tree(dir: &Path) -> Result<DirTree, RootfsError> {
    if !dir.is_dir() {
        return Err(RootfsError::NotADirectory(dir.to_path_buf()));
    }
    DirTree::open(dir).map_err(|e| io_err(dir, e))
}

/// `name` directly under `image` as a layer: the directory itself, or where a link of that
/// name leads when that is a directory inside the image, as a path relative to the image
/// (`""` for the image itself); `None` when absent.
fn subtree(image: &DirTree, name: &str) -> Result<Option<String>, RootfsError> {
    let at = image.path().join(name);
    let node = image.node(name).map_err(|e| io_err(&at, e))?;
    match node {
        Node::Missing | Node::File => Ok(None),
        Node::Dir => Ok(Some(name.to_string())),
        Node::Link(target) => {
            // The controller reads everything below this layer and ships it: a link that
            // leaves the image would ship whatever it leads to (an operator's ~/.ssh).
            let resolved = manifest::links::resolve(image, name, &target).map_err(|source| {
                RootfsError::Link {
                    file: at.clone(),
                    source: Box::new(source),
                }
            })?;
            let is_dir = resolved.exists
                && (resolved.path.is_empty()
                    || image.node(&resolved.path).map_err(|e| io_err(&at, e))? == Node::Dir);
            if !is_dir {
                return Err(RootfsError::LayerNotADirectory { link: at, target });
            }
            Ok(Some(resolved.path))
        }
    }
}

/// Opens the layer at `rel` (from [`subtree`]) through the image's handle, so the kernel
/// too keeps the open inside the image.
fn open_layer(image: &DirTree, rel: &str) -> Result<(Dir, PathBuf), RootfsError> {
    let path = image.path().join(rel);
    let dir = if rel.is_empty() {
        image.dir().try_clone()
    } else {
        image.dir().open_dir(rel)
    }
    .map_err(|e| io_err(&path, e))?;
    Ok((dir, path))
}

impl MergedTree {
    /// Forms the merged rootfs a host of `arch` (`amd64`/`arm64`, see [`arch_dir_for`])
    /// receives: the base layer without arch subtrees, then `DIR/<arch>/` on top, then each
    /// overlay in order. Content hashes come from `hash`, so callers can cache them.
    ///
    /// Every layer is read through a `cap_std` directory handle and never through a link;
    /// the `rootfs`/arch subtrees may be links that stay inside the image. Every link of
    /// the merged tree must resolve inside it (the host's copy is exactly this tree), and
    /// every name must be UTF-8 without control characters.
    pub fn merge(
        image_dir: &Path,
        arch: &str,
        overlays: &[PathBuf],
        hash: &mut dyn FnMut(&Path, &fs::Metadata) -> io::Result<String>,
    ) -> Result<MergedTree, RootfsError> {
        let image = open_tree(image_dir)?;
        let mut tree = MergedTree::default();
        let nested = subtree(&image, "rootfs")?;
        let skip_top: &[&str] = if nested.is_none() { &ARCH_DIRS } else { &[] };
        let (base, base_path) = open_layer(&image, nested.as_deref().unwrap_or(""))?;
        tree.apply_layer(&base, &base_path, skip_top)?;
        if let Some(rel) = subtree(&image, arch)? {
            let (layer, path) = open_layer(&image, &rel)?;
            tree.apply_layer(&layer, &path, &[])?;
        }
        for overlay in overlays {
            if !overlay.is_dir() {
                return Err(RootfsError::NotADirectory(overlay.clone()));
            }
            // An overlay is the operator's own directory, named on the command line.
            let layer = Dir::open_ambient_dir(overlay, cap_std::ambient_authority())
                .map_err(|e| io_err(overlay, e))?;
            tree.apply_layer(&layer, overlay, &[])?;
        }
        tree.check_links()?;
        tree.hash_files(hash)?;
        Ok(tree)
    }

    /// Resolves every link against the merged tree.
    fn check_links(&self) -> Result<(), RootfsError> {
        for sourced in self.entries.values() {
            if let EntryKind::Symlink { target } = &sourced.entry.kind {
                manifest::links::resolve(self, &sourced.entry.path, target).map_err(|source| {
                    RootfsError::Link {
                        file: sourced.source.clone(),
                        source: Box::new(source),
                    }
                })?;
            }
        }
        Ok(())
    }

    /// Puts one layer on top: a path in the layer replaces the same path below; a file
    /// replacing a directory (or the reverse) removes everything below that path first.
    ///
    /// `layer` is the layer's handle and `root` its path on disk (for sources and messages);
    /// below it nothing is followed.
    fn apply_layer(
        &mut self,
        layer: &Dir,
        root: &Path,
        skip_top: &[&str],
    ) -> Result<(), RootfsError> {
        // Directories still to read, as paths relative to the layer; each is opened when
        // its turn comes, so the number of open handles stays at one.
        let mut stack = vec![String::new()];
        while let Some(rel_dir) = stack.pop() {
            let abs_dir = if rel_dir.is_empty() {
                root.to_path_buf()
            } else {
                root.join(&rel_dir)
            };
            let dir = if rel_dir.is_empty() {
                layer.try_clone()
            } else {
                layer.open_dir(&rel_dir)
            }
            .map_err(|e| io_err(&abs_dir, e))?;
            let mut names = Vec::new();
            for item in dir.entries().map_err(|e| io_err(&abs_dir, e))? {
                names.push(item.map_err(|e| io_err(&abs_dir, e))?.file_name());
            }
            names.sort();
            for name in names {
                let name = paths::name_str(&abs_dir, &name)?.to_string();
                if rel_dir.is_empty() && skip_top.contains(&name.as_str()) {
                    continue;
                }
                let rel = if rel_dir.is_empty() {
                    name.clone()
                } else {
                    format!("{rel_dir}/{name}")
                };
                let abs = abs_dir.join(&name);
                let entry = describe(&dir, &name, &abs, &rel)?;
                let is_dir = matches!(entry.kind, EntryKind::Dir);
                let replaced_dir = matches!(
                    self.entries.get(&rel).map(|s| &s.entry.kind),
                    Some(EntryKind::Dir)
                );
                if replaced_dir && !is_dir {
                    self.remove_below(&rel);
                }
                self.entries.insert(
                    rel.clone(),
                    Sourced {
                        entry,
                        source: abs.clone(),
                    },
                );
                if is_dir {
                    stack.push(rel);
                }
            }
        }
        Ok(())
    }

    fn remove_below(&mut self, dir: &str) {
        let prefix = format!("{dir}/");
        let doomed: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.entries.remove(&k);
        }
    }

    fn hash_files(
        &mut self,
        hash: &mut dyn FnMut(&Path, &fs::Metadata) -> io::Result<String>,
    ) -> Result<(), RootfsError> {
        for sourced in self.entries.values_mut() {
            if let EntryKind::File { sha256, .. } = &mut sourced.entry.kind {
                let meta = fs::symlink_metadata(&sourced.source)
                    .map_err(|e| io_err(&sourced.source, e))?;
                *sha256 = hash(&sourced.source, &meta).map_err(|e| io_err(&sourced.source, e))?;
            }
        }
        Ok(())
    }

    /// The manifest of the merged tree.
    pub fn manifest(&self) -> Result<Manifest, RootfsError> {
        Ok(Manifest::from_entries(
            self.entries.values().map(|s| s.entry.clone()).collect(),
        )?)
    }

    /// One entry with its source.
    pub fn get(&self, path: &str) -> Option<&Sourced> {
        self.entries.get(path)
    }

    /// Where the content of `path` comes from on the local disk.
    pub fn source(&self, path: &str) -> Option<&Path> {
        self.entries.get(path).map(|s| s.source.as_path())
    }

    /// All entries with their sources, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = &Sourced> {
        self.entries.values()
    }

    /// Checks every ELF file directly under `bin/` (the files installed into
    /// `/usr/local/bin`) against the host's `uname -m`. Scripts pass.
    pub fn check_bin_machine(&self, host_uname: &str) -> Result<(), RootfsError> {
        let arch_dir = arch_dir_for(host_uname).unwrap_or(host_uname).to_string();
        for sourced in self.entries.values() {
            let path = &sourced.entry.path;
            let in_bin = path
                .strip_prefix("bin/")
                .is_some_and(|rest| !rest.contains('/'));
            if !in_bin || !sourced.entry.is_file() {
                continue;
            }
            let machine =
                elf_machine_of(&sourced.source).map_err(|e| io_err(&sourced.source, e))?;
            if let Some(machine) = machine
                && !machine.runs_on(host_uname)
            {
                return Err(RootfsError::WrongMachine {
                    path: path.clone(),
                    found: machine.uname(),
                    host: host_uname.to_string(),
                    arch_dir,
                });
            }
        }
        Ok(())
    }
}

/// The default content hasher: SHA-256 of the whole file.
pub fn hash_file_content(path: &Path, _meta: &fs::Metadata) -> io::Result<String> {
    manifest::sha256_file(path)
}

/// Describes `name` of `dir` (at `abs` on disk, `rel` in the tree) without following it.
fn describe(dir: &Dir, name: &str, abs: &Path, rel: &str) -> Result<Entry, RootfsError> {
    use cap_std::fs::{FileTypeExt, PermissionsExt};
    manifest::check_rel_path(rel)?;
    let meta = dir.symlink_metadata(name).map_err(|e| io_err(abs, e))?;
    let ft = meta.file_type();
    let mode = meta.permissions().mode() & 0o7777;
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        // Hashed later, once the merge has settled which file wins.
        EntryKind::File {
            size: meta.len(),
            sha256: String::new(),
        }
    } else if ft.is_symlink() {
        let target = dir.read_link_contents(name).map_err(|e| io_err(abs, e))?;
        let target = target.to_str().ok_or(ManifestError::BadPath {
            path: rel.to_string(),
            reason: "symlink target is not valid UTF-8",
        })?;
        // Where it leads is judged once the whole merged tree is known (`check_links`).
        EntryKind::Symlink {
            target: target.to_string(),
        }
    } else {
        let what = if ft.is_block_device() || ft.is_char_device() {
            "a device node"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a fifo"
        };
        return Err(ManifestError::Unsupported {
            path: abs.display().to_string(),
            what,
        }
        .into());
    };
    Ok(Entry {
        path: rel.to_string(),
        mode,
        kind,
    })
}

/// The merged tree is what a host receives; its links are resolved against it.
impl Lookup for MergedTree {
    fn node(&self, path: &str) -> io::Result<Node> {
        Ok(match self.entries.get(path).map(|s| &s.entry.kind) {
            None => Node::Missing,
            Some(EntryKind::Dir) => Node::Dir,
            Some(EntryKind::File { .. }) => Node::File,
            Some(EntryKind::Symlink { target }) => Node::Link(target.clone()),
        })
    }
}

fn io_err(path: &Path, source: io::Error) -> RootfsError {
    RootfsError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests;
