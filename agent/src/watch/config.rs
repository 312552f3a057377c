//! Which trees are watched and how, and the same resolved against one host: symlinks in the
//! configured paths followed inside the host root (`/lib` is `/usr/lib` on merged-usr
//! systems), duplicates dropped, and per-directory rules the walker can look up in one step.

use crate::root::HostRoot;
use std::collections::{HashMap, HashSet};
use std::fs;

pub use installer_proto::watch::WatchConfig;

/// A rule for one name inside one directory.
pub(crate) const R_EXCLUDE: u8 = 1;
/// Recorded as one entry, not descended into.
pub(crate) const R_SHALLOW: u8 = 2;
/// The root of another watched tree: walked by that tree, skipped here.
pub(crate) const R_TREE: u8 = 4;
/// The root of a copy tree.
pub(crate) const R_COPY: u8 = 8;

/// A watched tree's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tree {
    /// Host path, resolved.
    pub host: String,
    /// Inside a copy tree.
    pub copy: bool,
}

/// A [`WatchConfig`] resolved against one host root.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub trees: Vec<Tree>,
    /// Directory (host path) → name in it → rule bits.
    pub rules: HashMap<String, HashMap<String, u8>>,
    /// Every ancestor of an excluded path: a new directory here must be walked, not recorded
    /// as one recursive entry, or clean would remove what the exclusion protects (the
    /// cluster directory, the store).
    pub protected: HashSet<String>,
    pub copy_file_max: u64,
    pub copy_total_max: u64,
}

/// Whether `path` is `dir` or inside it (by whole components).
pub(crate) fn is_within(path: &str, dir: &str) -> bool {
    dir == "/"
        || path == dir
        || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

/// The parent host path of `path` (`/` for a top-level one), or None for `/`.
pub(crate) fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&path[..i]),
        None => None,
    }
}

/// `dir/name` as a host path.
pub(crate) fn join(dir: &str, name: &str) -> String {
    let mut s = String::with_capacity(dir.len() + 1 + name.len());
    s.push_str(dir);
    if !dir.ends_with('/') {
        s.push('/');
    }
    s.push_str(name);
    s
}

/// Resolves `host` component by component inside `root`, following symlinks with host
/// semantics (an absolute target starts again at the root, never at the real `/`). A
/// missing component ends resolution: the rest is appended as it is.
pub(crate) fn resolve(root: &HostRoot, host: &str) -> String {
    let mut done: Vec<String> = Vec::new();
    let mut todo: Vec<String> = host.split('/').rev().map(str::to_string).collect();
    let mut hops = 0;
    let mut missing = false;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        let cand = if done.is_empty() {
            format!("/{c}")
        } else {
            format!("/{}/{c}", done.join("/"))
        };
        if !missing {
            match fs::symlink_metadata(root.path(&cand)) {
                Ok(m) if m.file_type().is_symlink() && hops < 40 => {
                    hops += 1;
                    if let Ok(t) = fs::read_link(root.path(&cand))
                        && let Some(t) = t.to_str()
                    {
                        if t.starts_with('/') {
                            done.clear();
                        }
                        todo.extend(t.split('/').rev().map(str::to_string));
                        continue;
                    }
                }
                Ok(_) => {}
                Err(_) => missing = true,
            }
        }
        done.push(c);
    }
    format!("/{}", done.join("/"))
}

impl Plan {
    /// Resolves `cfg` for `root`; `extra_excludes` are host paths the agent writes itself.
    pub(super) fn new(root: &HostRoot, cfg: &WatchConfig, extra_excludes: &[String]) -> Plan {
        let resolve_all = |list: &[String]| -> Vec<String> {
            let mut v: Vec<String> = list.iter().map(|p| resolve(root, p)).collect();
            v.sort();
            v.dedup();
            v
        };
        let mut exclude = resolve_all(&cfg.exclude);
        exclude.extend(resolve_all(extra_excludes));
        exclude.sort();
        exclude.dedup();
        let shallow = resolve_all(&cfg.shallow);
        let copy = resolve_all(&cfg.copy_trees);
        let excluded = |p: &str| exclude.iter().any(|e| is_within(p, e));
        let trees: Vec<Tree> = resolve_all(&cfg.trees)
            .into_iter()
            .filter(|t| !excluded(t))
            .map(|host| Tree {
                copy: copy.iter().any(|c| is_within(&host, c)),
                host,
            })
            .collect();

        let mut rules: HashMap<String, HashMap<String, u8>> = HashMap::new();
        let mut add = |path: &str, bit: u8| {
            if let Some(dir) = parent(path) {
                let name = path[dir.len()..].trim_start_matches('/').to_string();
                *rules
                    .entry(dir.to_string())
                    .or_default()
                    .entry(name)
                    .or_default() |= bit;
            }
        };
        for e in &exclude {
            add(e, R_EXCLUDE);
        }
        for s in &shallow {
            add(s, R_SHALLOW);
        }
        for c in &copy {
            add(c, R_COPY);
        }
        for t in &trees {
            // A tree inside another is walked by itself (with its own mount), once.
            if trees
                .iter()
                .any(|o| o.host != t.host && is_within(&t.host, &o.host))
            {
                add(&t.host, R_TREE);
            }
        }
        let mut protected = HashSet::new();
        for e in &exclude {
            let mut cur = parent(e);
            while let Some(p) = cur {
                protected.insert(p.to_string());
                cur = parent(p);
            }
        }
        Plan {
            trees,
            rules,
            protected,
            copy_file_max: cfg.copy_file_max,
            copy_total_max: cfg.copy_total_max,
        }
    }
}

#[cfg(test)]
mod tests {
    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn paths_compare_by_whole_components() {
        assert!(is_within("/etc/a", "/etc"));
        assert!(is_within("/etc", "/etc"));
        assert!(!is_within("/etcd", "/etc"));
        assert!(is_within("/x", "/"));
        assert_eq!(parent("/etc/a"), Some("/etc"));
        assert_eq!(parent("/etc"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(join("/", "etc"), "/etc");
        assert_eq!(join("/etc", "a"), "/etc/a");
    }

    #[test]
    fn merged_usr_trees_resolve_inside_the_root_and_are_walked_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::at(dir.path());
        fs::create_dir_all(dir.path().join("usr/lib/systemd/system")).unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        // Absolute target: must resolve inside the root, not to the real /usr/lib.
        symlink("/usr/lib", dir.path().join("lib")).unwrap();
        assert_eq!(
            resolve(&root, "/lib/systemd/system"),
            "/usr/lib/systemd/system"
        );
        assert_eq!(resolve(&root, "/lib/missing/x"), "/usr/lib/missing/x");

        let cfg = WatchConfig {
            trees: strings(&[
                "/etc",
                "/usr",
                "/lib/systemd",
                "/usr/lib/systemd",
                "/var/lib",
            ]),
            exclude: strings(&["/var/lib/x/y"]),
            ..WatchConfig::default()
        };
        let plan = Plan::new(&root, &cfg, &[]);
        let hosts: Vec<&str> = plan.trees.iter().map(|t| t.host.as_str()).collect();
        assert_eq!(hosts, ["/etc", "/usr", "/usr/lib/systemd", "/var/lib"]);
        assert!(plan.trees[0].copy && !plan.trees[1].copy);
        assert_eq!(plan.rules["/usr/lib"]["systemd"], R_TREE);
        assert_eq!(plan.rules["/usr/lib/systemd"]["system"], R_COPY);
        assert_eq!(plan.rules["/var/lib/x"]["y"], R_EXCLUDE);
        assert!(plan.protected.contains("/var/lib/x") && plan.protected.contains("/var/lib"));
    }

    #[test]
    fn config_round_trips_and_defaults_fill_missing_fields() {
        let cfg: WatchConfig = serde_json::from_str(r#"{"trees":["/etc"]}"#).unwrap();
        assert_eq!(cfg.trees, ["/etc"]);
        assert_eq!(cfg.copy_file_max, WatchConfig::default().copy_file_max);
        let text = serde_json::to_string(&WatchConfig::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<WatchConfig>(&text).unwrap(),
            WatchConfig::default()
        );
        assert!(serde_json::from_str::<WatchConfig>(r#"{"tree":["/etc"]}"#).is_err());
    }
}
