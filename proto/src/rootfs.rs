//! The rootfs contract (SPEC §3): how a host's *merged rootfs* is formed from the image
//! directory, its per-architecture subtree and the user's overlays, and the ELF check that
//! keeps a binary of the wrong machine off a host. Both sides use it: the controller to build
//! what it ships, the agent when run by hand on a rootfs directory.

use crate::manifest::{self, Entry, EntryKind, Manifest, ManifestError};
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Per-architecture subtree names (Go's names, as sealer uses them).
pub const ARCH_DIRS: [&str; 2] = ["amd64", "arm64"];

/// Maps `uname -m` to the rootfs arch subtree name: `x86_64` → `amd64`, `aarch64` →
/// `arm64`. `None` for machines the product does not support.
pub fn arch_dir_for(uname_machine: &str) -> Option<&'static str> {
    match uname_machine {
        "x86_64" | "amd64" => Some("amd64"),
        "aarch64" | "arm64" => Some("arm64"),
        _ => None,
    }
}

/// The `uname -m` machine an ELF header is built for, when it is an ELF file of a machine we
/// know; `Some("other(N)")`-style names are not invented: unknown machines give the raw
/// number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElfMachine {
    /// x86-64 (`e_machine` 62).
    X86_64,
    /// AArch64 (`e_machine` 183).
    Aarch64,
    /// Any other machine number.
    Other(u16),
}

impl ElfMachine {
    /// The `uname -m` spelling.
    pub fn uname(&self) -> String {
        match self {
            ElfMachine::X86_64 => "x86_64".into(),
            ElfMachine::Aarch64 => "aarch64".into(),
            ElfMachine::Other(n) => format!("ELF machine {n}"),
        }
    }

    /// Whether a host reporting `uname_machine` can run this binary.
    pub fn runs_on(&self, uname_machine: &str) -> bool {
        arch_dir_for(uname_machine) == arch_dir_for(&self.uname())
            && arch_dir_for(uname_machine).is_some()
    }
}

/// Reads the ELF machine from the first bytes of a file; `None` if it is not ELF (scripts).
pub fn elf_machine(header: &[u8]) -> Option<ElfMachine> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        return None;
    }
    // EI_DATA: 1 little-endian, 2 big-endian. e_machine is the u16 at offset 18.
    let raw = [header[18], header[19]];
    let machine = match header[5] {
        2 => u16::from_be_bytes(raw),
        _ => u16::from_le_bytes(raw),
    };
    Some(match machine {
        62 => ElfMachine::X86_64,
        183 => ElfMachine::Aarch64,
        n => ElfMachine::Other(n),
    })
}

/// Reads the ELF machine of a file on disk.
pub fn elf_machine_of(path: &Path) -> io::Result<Option<ElfMachine>> {
    let mut header = [0u8; 20];
    let mut file = fs::File::open(path)?;
    let mut read = 0;
    while read < header.len() {
        let n = file.read(&mut header[read..])?;
        if n == 0 {
            break;
        }
        read += n;
    }
    Ok(elf_machine(&header[..read]))
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
/// (sealer's image layout), else `DIR` itself.
pub fn base_dir(image_dir: &Path) -> PathBuf {
    let nested = image_dir.join("rootfs");
    if nested.is_dir() {
        nested
    } else {
        image_dir.to_path_buf()
    }
}

impl MergedTree {
    /// Forms the merged rootfs a host of `arch` (`amd64`/`arm64`, see [`arch_dir_for`])
    /// receives: the base layer without arch subtrees, then `DIR/<arch>/` on top, then each
    /// overlay in order. Content hashes come from `hash`, so callers can cache them.
    pub fn merge(
        image_dir: &Path,
        arch: &str,
        overlays: &[PathBuf],
        hash: &mut dyn FnMut(&Path, &fs::Metadata) -> io::Result<String>,
    ) -> Result<MergedTree, RootfsError> {
        if !image_dir.is_dir() {
            return Err(RootfsError::NotADirectory(image_dir.to_path_buf()));
        }
        let mut tree = MergedTree::default();
        let base = base_dir(image_dir);
        let skip_top: &[&str] = if base == image_dir { &ARCH_DIRS } else { &[] };
        tree.apply_layer(&base, skip_top)?;
        let arch_tree = image_dir.join(arch);
        if arch_tree.is_dir() {
            tree.apply_layer(&arch_tree, &[])?;
        }
        for overlay in overlays {
            if !overlay.is_dir() {
                return Err(RootfsError::NotADirectory(overlay.clone()));
            }
            tree.apply_layer(overlay, &[])?;
        }
        tree.hash_files(hash)?;
        Ok(tree)
    }

    /// Puts one layer on top: a path in the layer replaces the same path below; a file
    /// replacing a directory (or the reverse) removes everything below that path first.
    fn apply_layer(&mut self, dir: &Path, skip_top: &[&str]) -> Result<(), RootfsError> {
        let mut stack = vec![(dir.to_path_buf(), String::new())];
        while let Some((abs_dir, rel_dir)) = stack.pop() {
            let mut names = Vec::new();
            for item in fs::read_dir(&abs_dir).map_err(|e| io_err(&abs_dir, e))? {
                names.push(item.map_err(|e| io_err(&abs_dir, e))?.file_name());
            }
            names.sort();
            for name in names {
                let Some(name) = name.to_str().map(str::to_string) else {
                    return Err(ManifestError::BadPath {
                        path: abs_dir.join(&name).display().to_string(),
                        reason: "file name is not valid UTF-8",
                    }
                    .into());
                };
                if rel_dir.is_empty() && skip_top.contains(&name.as_str()) {
                    continue;
                }
                let rel = if rel_dir.is_empty() {
                    name.clone()
                } else {
                    format!("{rel_dir}/{name}")
                };
                let abs = abs_dir.join(&name);
                let entry = describe(&abs, &rel)?;
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
                    stack.push((abs, rel));
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
                let meta = fs::metadata(&sourced.source).map_err(|e| io_err(&sourced.source, e))?;
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

fn describe(abs: &Path, rel: &str) -> Result<Entry, RootfsError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    manifest::check_rel_path(rel)?;
    let meta = fs::symlink_metadata(abs).map_err(|e| io_err(abs, e))?;
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
        let target = fs::read_link(abs).map_err(|e| io_err(abs, e))?;
        let target = target.to_str().ok_or(ManifestError::BadPath {
            path: rel.to_string(),
            reason: "symlink target is not valid UTF-8",
        })?;
        if !manifest::symlink_stays_inside(rel, target) {
            return Err(ManifestError::SymlinkEscapes {
                path: rel.to_string(),
                target: target.to_string(),
            }
            .into());
        }
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

fn io_err(path: &Path, source: io::Error) -> RootfsError {
    RootfsError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, content: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn merge(dir: &Path, arch: &str, overlays: &[PathBuf]) -> MergedTree {
        MergedTree::merge(dir, arch, overlays, &mut hash_file_content).unwrap()
    }

    fn elf(machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[18..20].copy_from_slice(&machine.to_le_bytes());
        h
    }

    #[test]
    fn arch_subtree_and_overlays_merge_in_order() {
        let img = tempfile::tempdir().unwrap();
        let ov = tempfile::tempdir().unwrap();
        write(img.path(), "etc/daemon.json", b"base");
        write(img.path(), "bin/kubectl", b"generic");
        write(img.path(), "amd64/bin/kubectl", b"amd64 build");
        write(img.path(), "arm64/bin/kubectl", b"arm64 build");
        write(ov.path(), "etc/daemon.json", b"user");
        write(ov.path(), "scripts/preHook.sh", b"echo hi");

        let tree = merge(img.path(), "amd64", &[ov.path().to_path_buf()]);
        let m = tree.manifest().unwrap();
        let paths: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "bin",
                "bin/kubectl",
                "etc",
                "etc/daemon.json",
                "scripts",
                "scripts/preHook.sh"
            ]
        );
        assert_eq!(
            fs::read(tree.source("bin/kubectl").unwrap()).unwrap(),
            b"amd64 build"
        );
        assert_eq!(
            fs::read(tree.source("etc/daemon.json").unwrap()).unwrap(),
            b"user"
        );
        assert_eq!(
            m.get("etc/daemon.json").unwrap().sha256().unwrap(),
            manifest::sha256_bytes(b"user")
        );
        let arm = merge(img.path(), "arm64", &[]);
        assert_eq!(
            fs::read(arm.source("bin/kubectl").unwrap()).unwrap(),
            b"arm64 build"
        );
    }

    #[test]
    fn nested_rootfs_layout_is_the_base() {
        let img = tempfile::tempdir().unwrap();
        write(img.path(), "rootfs/etc/a", b"a");
        write(img.path(), "amd64/bin/x", b"x");
        write(img.path(), "Kubefile", b"FROM scratch");
        let m = merge(img.path(), "amd64", &[]).manifest().unwrap();
        let paths: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["bin", "bin/x", "etc", "etc/a"]);
    }

    #[test]
    fn a_file_over_a_directory_replaces_the_whole_subtree() {
        let img = tempfile::tempdir().unwrap();
        let ov = tempfile::tempdir().unwrap();
        write(img.path(), "etc/conf.d/a", b"a");
        write(img.path(), "etc/conf.d/b", b"b");
        write(ov.path(), "etc/conf.d", b"now a file");
        let m = merge(img.path(), "amd64", &[ov.path().to_path_buf()])
            .manifest()
            .unwrap();
        let paths: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["etc", "etc/conf.d"]);
        assert!(m.get("etc/conf.d").unwrap().is_file());
    }

    #[test]
    fn elf_machine_is_read_and_checked() {
        assert_eq!(elf_machine(&elf(62)), Some(ElfMachine::X86_64));
        assert_eq!(elf_machine(&elf(183)), Some(ElfMachine::Aarch64));
        assert_eq!(elf_machine(b"#!/bin/sh\necho hi\n"), None);
        assert!(ElfMachine::X86_64.runs_on("x86_64"));
        assert!(!ElfMachine::X86_64.runs_on("aarch64"));

        let img = tempfile::tempdir().unwrap();
        write(img.path(), "bin/tool", &elf(183));
        write(img.path(), "bin/script.sh", b"#!/bin/sh\n");
        write(img.path(), "cri/other", &elf(183));
        let tree = merge(img.path(), "amd64", &[]);
        let err = tree.check_bin_machine("x86_64").unwrap_err().to_string();
        assert_eq!(
            err,
            "bin/tool: built for aarch64, but the host is x86_64; put it under amd64/bin/ (per-architecture subtree) or ship the x86_64 build"
        );
        tree.check_bin_machine("aarch64").unwrap();
    }

    #[test]
    fn missing_image_dir_is_a_clear_error() {
        let err = MergedTree::merge(
            Path::new("/nonexistent/rootfs"),
            "amd64",
            &[],
            &mut hash_file_content,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
