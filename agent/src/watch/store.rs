//! The content store: copies of the files under copy trees as they were before a step, so a
//! file the step changed or deleted can be restored. Copies are named by their content's
//! sha256 (a name never changes meaning, so a copy `Changes` refers to is never overwritten),
//! and `index.json` maps each host path to the metadata its copy was taken at: a refresh
//! copies only files whose metadata moved since (the first one copies all of /etc once).
//!
//! Layout: `<store>/index.json`, `<store>/objects/<sha256>`; everything 0600 in 0700
//! directories, since the copies include `/etc/shadow`.

use super::WatchError;
use super::merge::Changes;
use super::snapshot::{Kind, Meta, Snapshot};
use crate::fsutil::{self, ctx};
use crate::root::HostRoot;
use installer_proto::manifest::sha256_bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const INDEX_VERSION: u32 = 1;

/// The copy of one path's content, and the metadata the file had when it was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Copy {
    pub sha256: String,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
}

impl Copy {
    fn matches(&self, m: &Meta) -> bool {
        (self.size, self.mtime_ns, self.ctime_ns, self.ino, self.dev)
            == (m.size, m.mtime_ns, m.ctime_ns, m.ino, m.dev)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    version: u32,
    files: BTreeMap<String, Copy>,
}

/// An open store.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    index: Index,
    /// Bytes of all objects.
    total: u64,
    file_max: u64,
    total_max: u64,
    tmp_seq: u64,
}

/// Where the object `name` of the store in `dir` is.
pub(crate) fn object_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("objects").join(name)
}

fn index_file(dir: &Path) -> PathBuf {
    dir.join("index.json")
}

fn make_dir(p: &Path) -> Result<(), WatchError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(ctx(p, "creating directory"))?;
    Ok(())
}

fn read_index(dir: &Path) -> Index {
    // A missing or unreadable index only costs a full refresh: copies are found by their
    // content hash, and what `Changes` references does not depend on the index.
    fs::read(index_file(dir))
        .ok()
        .and_then(|b| serde_json::from_slice::<Index>(&b).ok())
        .filter(|i| i.version == INDEX_VERSION)
        .unwrap_or_default()
}

impl Store {
    /// Opens (creating) the store in `dir`.
    pub(super) fn open(dir: &Path, file_max: u64, total_max: u64) -> Result<Store, WatchError> {
        let objects = dir.join("objects");
        make_dir(&objects)?;
        let mut total = 0;
        for ent in fs::read_dir(&objects)
            .map_err(ctx(&objects, "listing"))?
            .flatten()
        {
            total += ent.metadata().map_or(0, |m| m.len());
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            index: read_index(dir),
            total,
            file_max,
            total_max,
            tmp_seq: 0,
        })
    }

    /// The copy of `path` taken when it had the metadata `m` (as in a before-snapshot).
    pub(super) fn copy_for(&self, path: &str, m: &Meta) -> Option<&Copy> {
        self.index
            .files
            .get(path)
            .filter(|c| m.kind == Kind::File && c.matches(m))
    }

    /// Brings the store up to `snap`: every regular file under a copy tree whose metadata
    /// differs from its copy's (or that has none) is copied, within the caps. Index entries
    /// of paths that are gone, too large or over the cap are dropped, so no stale copy is
    /// ever taken for a file's before-content.
    pub(super) fn refresh(&mut self, root: &HostRoot, snap: &Snapshot) -> Result<(), WatchError> {
        let old = std::mem::take(&mut self.index.files);
        let mut changed = false;
        let mut wrote = false;
        for (path, m) in snap.iter() {
            if !m.in_copy_tree() || m.kind != Kind::File || m.size > self.file_max {
                continue;
            }
            if let Some(c) = old.get(path).filter(|c| c.matches(m)) {
                self.index.files.insert(path.to_string(), c.clone());
                continue;
            }
            changed = true;
            match self.take_copy(&root.path(path))? {
                Some((copy, new)) => {
                    wrote |= new;
                    self.index.files.insert(path.to_string(), copy);
                }
                None => continue,
            }
        }
        changed |= old.len() != self.index.files.len();
        if wrote {
            // One syncfs instead of an fsync per copy: the first refresh writes a thousand.
            let objects = self.dir.join("objects");
            let d = File::open(&objects).map_err(ctx(&objects, "opening"))?;
            nix::unistd::syncfs(&d)
                .map_err(|e| ctx(&objects, "syncing")(io::Error::from_raw_os_error(e as i32)))?;
        }
        if changed {
            self.index.version = INDEX_VERSION;
            let bytes =
                serde_json::to_vec(&self.index).map_err(|e| WatchError::Encode(e.to_string()))?;
            fsutil::write_atomic(&index_file(&self.dir), &bytes, 0o600)?;
        }
        Ok(())
    }

    /// Copies the file at `real` into the store; None when it cannot or may not be (not a
    /// regular file any more, unreadable, too large, over the cap). The flag says whether
    /// an object was written (rather than found).
    fn take_copy(&mut self, real: &Path) -> Result<Option<(Copy, bool)>, WatchError> {
        let Ok(mut f) = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(real)
        else {
            return Ok(None);
        };
        let Ok(m) = f.metadata() else { return Ok(None) };
        if !m.is_file() || m.len() > self.file_max {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(m.len() as usize);
        if (&mut f)
            .take(self.file_max + 1)
            .read_to_end(&mut buf)
            .is_err()
        {
            return Ok(None);
        }
        // Metadata after reading: if the file moved meanwhile, the copy will not match the
        // snapshot and is simply not used.
        let Ok(m) = f.metadata() else { return Ok(None) };
        let sha256 = sha256_bytes(&buf);
        let copy = Copy {
            sha256: sha256.clone(),
            size: m.size(),
            mtime_ns: crate::fsutil::mtime_ns(&m),
            ctime_ns: crate::fsutil::ctime_ns(&m),
            ino: m.ino(),
            dev: m.dev(),
        };
        let target = object_path(&self.dir, &sha256);
        // An object of the right size is that content (it was renamed into place whole).
        if fs::symlink_metadata(&target).is_ok_and(|t| t.len() == buf.len() as u64) {
            return Ok(Some((copy, false)));
        }
        if self.total + buf.len() as u64 > self.total_max {
            return Ok(None);
        }
        self.tmp_seq += 1;
        let tmp =
            self.dir
                .join("objects")
                .join(format!(".tmp-{}-{}", std::process::id(), self.tmp_seq));
        let write = || -> Result<(), WatchError> {
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(ctx(&tmp, "creating"))?;
            out.write_all(&buf).map_err(ctx(&tmp, "writing"))?;
            fs::rename(&tmp, &target).map_err(ctx(&target, "renaming into place"))?;
            Ok(())
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.total += buf.len() as u64;
        Ok(Some((copy, true)))
    }
}

/// Removes every object neither `changes` nor the index refers to (and leftovers of crashed
/// writes). Called when the journal is saved after clean or apply.
pub fn prune_store(store_dir: &Path, changes: &Changes) -> Result<(), WatchError> {
    let objects = store_dir.join("objects");
    let Ok(rd) = fs::read_dir(&objects) else {
        return Ok(());
    };
    let index = read_index(store_dir);
    let mut keep: HashSet<&str> = changes.backups().collect();
    keep.extend(index.files.values().map(|c| c.sha256.as_str()));
    for ent in rd {
        let ent = ent.map_err(ctx(&objects, "listing"))?;
        let name = ent.file_name();
        if name.to_str().is_some_and(|n| keep.contains(n)) {
            continue;
        }
        let p = ent.path();
        fsutil::remove_file_if_exists(&p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::config::{Plan, WatchConfig};
    use crate::watch::walk::walk;
    use std::os::unix::fs::PermissionsExt;

    fn setup(d: &Path) -> (HostRoot, Plan) {
        fs::create_dir_all(d.join("etc/sub")).unwrap();
        fs::write(d.join("etc/a"), "alpha").unwrap();
        fs::write(d.join("etc/sub/b"), "beta").unwrap();
        fs::write(d.join("etc/big"), vec![b'x'; 100]).unwrap();
        let root = HostRoot::at(d);
        let cfg = WatchConfig {
            trees: vec!["/etc".into()],
            copy_file_max: 50,
            ..WatchConfig::default()
        };
        let plan = Plan::new(&root, &cfg, &[]);
        (root, plan)
    }

    fn objects(store: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(store.join("objects"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn refresh_copies_changed_files_only_and_never_rewrites_a_copy() {
        let host = tempfile::tempdir().unwrap();
        let st = tempfile::tempdir().unwrap();
        let (root, plan) = setup(host.path());
        let mut store = Store::open(st.path(), plan.copy_file_max, plan.copy_total_max).unwrap();
        let snap = walk(&root, &plan, None);
        store.refresh(&root, &snap).unwrap();
        let a = store
            .copy_for("/etc/a", snap.get("/etc/a").unwrap())
            .unwrap()
            .clone();
        assert_eq!(a.sha256, sha256_bytes(b"alpha"));
        assert_eq!(
            fs::read(object_path(st.path(), &a.sha256)).unwrap(),
            b"alpha"
        );
        let mode = fs::metadata(object_path(st.path(), &a.sha256))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Over copy_file_max: no copy.
        assert!(
            store
                .copy_for("/etc/big", snap.get("/etc/big").unwrap())
                .is_none()
        );
        assert_eq!(objects(st.path()).len(), 2);

        // Untouched files are not read again: a copy removed behind the store's back stays
        // removed, proving the metadata check skipped it.
        fs::remove_file(object_path(st.path(), &sha256_bytes(b"beta"))).unwrap();
        fs::write(host.path().join("etc/a"), "alpha2").unwrap();
        let snap2 = walk(&root, &plan, None);
        let mut store = Store::open(st.path(), plan.copy_file_max, plan.copy_total_max).unwrap();
        store.refresh(&root, &snap2).unwrap();
        let names = objects(st.path());
        assert_eq!(names, {
            let mut v = vec![sha256_bytes(b"alpha"), sha256_bytes(b"alpha2")];
            v.sort();
            v
        });
        // The old copy is still there (a Modified entry may refer to it) and the index has
        // moved on; the old metadata no longer finds a copy.
        assert!(
            store
                .copy_for("/etc/a", snap.get("/etc/a").unwrap())
                .is_none()
        );
        assert!(
            store
                .copy_for("/etc/a", snap2.get("/etc/a").unwrap())
                .is_some()
        );
    }

    #[test]
    fn the_total_cap_limits_copies_and_prune_keeps_what_is_referenced() {
        let host = tempfile::tempdir().unwrap();
        let st = tempfile::tempdir().unwrap();
        let (root, plan) = setup(host.path());
        let mut store = Store::open(st.path(), plan.copy_file_max, 6).unwrap();
        let snap = walk(&root, &plan, None);
        store.refresh(&root, &snap).unwrap();
        // "alpha" (5 bytes) fits, "beta" would not.
        assert!(
            store
                .copy_for("/etc/a", snap.get("/etc/a").unwrap())
                .is_some()
        );
        assert!(
            store
                .copy_for("/etc/sub/b", snap.get("/etc/sub/b").unwrap())
                .is_none()
        );

        fs::write(object_path(st.path(), "stale"), "s").unwrap();
        fs::write(object_path(st.path(), "referenced"), "r").unwrap();
        let mut changes = Changes::default();
        changes.entries.insert(
            "/etc/x".into(),
            crate::watch::merge::Change::Deleted {
                step: "s".into(),
                backup: Some("referenced".into()),
                needs_backup: true,
                before: crate::watch::merge::Attrs {
                    kind: Kind::File,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    target: None,
                },
            },
        );
        prune_store(st.path(), &changes).unwrap();
        let mut want = vec!["referenced".to_string(), sha256_bytes(b"alpha")];
        want.sort();
        assert_eq!(objects(st.path()), want);
    }
}
