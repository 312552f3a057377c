//! Resolving symbolic links against a tree, component by component, the way the kernel
//! will once the tree is on a host — so a link that is "inside" by its text but leaves the
//! tree through another link (`up -> ../../..`, then `x -> a/up/../../outside`) is caught.
//!
//! The tree is whatever [`Lookup`] answers for: a [`Manifest`](super::Manifest) (what an
//! agent is about to place), a merged rootfs, or a directory on disk ([`DirTree`], read
//! through a `cap_std` directory handle, so looking never leaves it either).

use super::paths::{control_char, quote};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::fmt::Write;
use std::io;
use std::path::{Component, Path, PathBuf};

/// How many links one resolution may follow before it counts as a loop (Linux's
/// `MAXSYMLINKS`: the kernel gives up after as many with `ELOOP`).
pub const MAX_HOPS: usize = 40;

/// What one path of a tree is, as far as resolving links needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// Nothing at that path.
    Missing,
    /// A directory.
    Dir,
    /// Anything else that is not a link (a regular file, mostly).
    File,
    /// A symbolic link with its target as stored.
    Link(String),
}

/// A tree that links are resolved against.
pub trait Lookup {
    /// What `path` is: a relative, `/`-separated path whose every ancestor is a directory of
    /// the tree (the resolver never asks about a path below a link).
    fn node(&self, path: &str) -> io::Result<Node>;

    /// Where the tree is on disk, when it is; used to say in absolute terms where an
    /// escaping link leads.
    fn root(&self) -> Option<&Path> {
        None
    }
}

/// Where a link leads inside the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The resolved path relative to the tree's top (`""` is the top itself).
    pub path: String,
    /// Whether that path exists in the tree; `false` for a dangling link, whose missing part
    /// was resolved by its text alone (a missing directory could still be created there).
    pub exists: bool,
}

/// One link followed on the way: its path and its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// Path of the link in the tree.
    pub link: String,
    /// Its target as stored.
    pub target: String,
}

/// Why a link is refused.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The link, followed through the tree, ends up outside it.
    #[error(
        "symlink {} -> {} leads outside the rootfs (to {leads_to}{}); every link must resolve to a path inside the rootfs",
        quote(link),
        quote(target),
        via(hops)
    )]
    Escapes {
        /// The link.
        link: String,
        /// Its target.
        target: String,
        /// Where it leads: an absolute path, or one relative to the tree's top (`<rootfs>/..`).
        leads_to: String,
        /// The other links followed on the way, in order.
        hops: Vec<Hop>,
    },
    /// Following the link never ends.
    #[error(
        "symlink {} -> {} does not resolve: more than {MAX_HOPS} links followed ({}); remove the loop",
        quote(link),
        quote(target),
        cycle(hops)
    )]
    Loop {
        /// The link.
        link: String,
        /// Its target.
        target: String,
        /// The links followed.
        hops: Vec<Hop>,
    },
    /// A target holds a control character (it would be printed and placed as is).
    #[error(
        "symlink {} -> {}: the target contains the control character U+{:04X}; links with control characters are refused",
        quote(link),
        quote(target),
        *ch as u32
    )]
    ControlChar {
        /// The link.
        link: String,
        /// Its target.
        target: String,
        /// The character.
        ch: char,
    },
    /// The tree could not be read.
    #[error("symlink {}: reading {}: {source}", quote(link), quote(path))]
    Io {
        /// The link being resolved.
        link: String,
        /// The path being looked at.
        path: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn via(hops: &[Hop]) -> String {
    let mut out = String::new();
    for (i, hop) in hops.iter().enumerate() {
        out.push_str(if i == 0 { ", via " } else { ", then " });
        let _ = write!(out, "{} -> {}", quote(&hop.link), quote(&hop.target));
    }
    out
}

fn cycle(hops: &[Hop]) -> String {
    // The hops repeat; showing them up to the first repetition shows the loop.
    let mut shown: Vec<String> = Vec::new();
    for hop in hops {
        let s = format!("{} -> {}", quote(&hop.link), quote(&hop.target));
        if shown.contains(&s) {
            break;
        }
        shown.push(s);
    }
    shown.push("…".into());
    shown.join(", ")
}

/// Resolves the link at `link` (a tree path) whose target is `target` against `tree`:
/// every component in turn, following each link met (relative to the directory holding
/// it), `..` stepping back up the resolved path. Refused: an absolute target (here or
/// anywhere in the chain), a `..` above the tree's top, more than [`MAX_HOPS`] links, and
/// control characters in a target.
///
/// A component missing from the tree (or one that is a file) ends the lookup; the rest is
/// resolved by its text, conservatively — whatever is created there later, `..` can only go
/// back up what was already resolved.
pub fn resolve(tree: &dyn Lookup, link: &str, target: &str) -> Result<Resolved, LinkError> {
    let mut hops: Vec<Hop> = Vec::new();
    check_target(link, link, target)?;
    // The resolved path so far: names of real directories of the tree.
    let mut stack: Vec<String> = match link.rsplit_once('/') {
        Some((parent, _)) => parent.split('/').map(str::to_string).collect(),
        None => Vec::new(),
    };
    // Components still to resolve, the next one last.
    let mut pending: Vec<String> = Vec::new();
    if let Some(escape) = push_target(&mut pending, target) {
        return Err(escaped(tree, link, target, escape, &pending, hops));
    }
    let mut exists = true;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => {}
            ".." => {
                if stack.pop().is_none() {
                    pending.push(part);
                    return Err(escaped(
                        tree,
                        link,
                        target,
                        Escape::AboveTop,
                        &pending,
                        hops,
                    ));
                }
            }
            _ if !exists => stack.push(part),
            _ => {
                let path = if stack.is_empty() {
                    part.clone()
                } else {
                    format!("{}/{part}", stack.join("/"))
                };
                let node = tree.node(&path).map_err(|source| LinkError::Io {
                    link: link.to_string(),
                    path: path.clone(),
                    source,
                })?;
                match node {
                    Node::Dir => stack.push(part),
                    Node::File | Node::Missing => {
                        // The kernel stops here (ENOENT/ENOTDIR); the text of the rest
                        // must still stay inside.
                        exists = matches!(node, Node::File)
                            && pending.iter().all(|p| p.is_empty() || p == ".");
                        stack.push(part);
                    }
                    Node::Link(next) => {
                        check_target(link, &path, &next)?;
                        hops.push(Hop {
                            link: path,
                            target: next.clone(),
                        });
                        if hops.len() > MAX_HOPS {
                            return Err(LinkError::Loop {
                                link: link.to_string(),
                                target: target.to_string(),
                                hops,
                            });
                        }
                        if let Some(escape) = push_target(&mut pending, &next) {
                            return Err(escaped(tree, link, target, escape, &pending, hops));
                        }
                    }
                }
            }
        }
    }
    Ok(Resolved {
        path: stack.join("/"),
        exists,
    })
}

fn check_target(link: &str, at: &str, target: &str) -> Result<(), LinkError> {
    match control_char(target) {
        Some(ch) => Err(LinkError::ControlChar {
            link: link.to_string(),
            target: if at == link {
                target.to_string()
            } else {
                format!("{at} -> {target}")
            },
            ch,
        }),
        None => Ok(()),
    }
}

enum Escape {
    Absolute(String),
    AboveTop,
}

/// Queues `target`'s components (the first one last); an absolute target is an escape.
fn push_target(pending: &mut Vec<String>, target: &str) -> Option<Escape> {
    if target.starts_with('/') {
        return Some(Escape::Absolute(target.to_string()));
    }
    pending.extend(target.split('/').rev().map(str::to_string));
    None
}

fn escaped(
    tree: &dyn Lookup,
    link: &str,
    target: &str,
    escape: Escape,
    pending: &[String],
    hops: Vec<Hop>,
) -> LinkError {
    // What is left to resolve, in order, read by its text: nothing outside the tree is
    // looked at, so this says where the link points, not what is there.
    let rest: Vec<&str> = pending.iter().rev().map(String::as_str).collect();
    let leads_to = match escape {
        Escape::Absolute(abs) => normalize(Path::new(&abs), &rest),
        Escape::AboveTop => match tree.root() {
            Some(root) => normalize(root, &rest),
            None => format!("<rootfs>/{}", rest.join("/")),
        },
    };
    LinkError::Escapes {
        link: link.to_string(),
        target: target.to_string(),
        leads_to: quote(&leads_to),
        hops,
    }
}

/// `base` with `rest` appended, `.`/`..` folded by text (for messages only).
fn normalize(base: &Path, rest: &[&str]) -> String {
    let mut out = PathBuf::from("/");
    let mut push = |c: &str| match c {
        "" | "." => {}
        ".." => {
            out.pop();
        }
        name => out.push(name),
    };
    for c in base.components() {
        match c {
            Component::Normal(n) => push(&n.to_string_lossy()),
            Component::ParentDir => push(".."),
            _ => {}
        }
    }
    for part in rest {
        for c in part.split('/') {
            push(c);
        }
    }
    out.display().to_string()
}

/// A directory on disk as a [`Lookup`]: every look goes through one `cap_std` directory
/// handle (`openat2` with `RESOLVE_BENEATH` where the kernel has it), never following a
/// link, so even a tree that changes while it is read cannot send a look outside it.
#[derive(Debug)]
pub struct DirTree {
    dir: Dir,
    root: PathBuf,
}

impl DirTree {
    /// Opens `root` (the path itself may be reached through links: it is the caller's).
    pub fn open(root: &Path) -> io::Result<DirTree> {
        Ok(DirTree {
            dir: Dir::open_ambient_dir(root, ambient_authority())?,
            root: root.to_path_buf(),
        })
    }

    /// The directory handle, for reading the tree below it.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// The path it was opened at.
    pub fn path(&self) -> &Path {
        &self.root
    }
}

impl Lookup for DirTree {
    fn node(&self, path: &str) -> io::Result<Node> {
        let meta = match self.dir.symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Node::Missing),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(Node::Missing),
            Err(e) => return Err(e),
        };
        Ok(if meta.is_symlink() {
            let target = self.dir.read_link_contents(path)?;
            let target = target.to_str().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the link's target is not valid UTF-8",
                )
            })?;
            Node::Link(target.to_string())
        } else if meta.is_dir() {
            Node::Dir
        } else {
            Node::File
        })
    }

    fn root(&self) -> Option<&Path> {
        Some(&self.root)
    }
}

#[cfg(test)]
mod tests;
