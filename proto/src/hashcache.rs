//! Content hashes remembered across runs, so that a multi-gigabyte rootfs is hashed once and
//! later runs only stat its files: the controller's cache of rootfs trees and archives, and
//! the agent's index of the host's rootfs copy.
//!
//! A record is trusted while the file's size, mtime (nanoseconds) and inode are unchanged.
//! Files modified within [`RACY_SECS`] of being hashed are not recorded: a write in the same
//! mtime tick after hashing would otherwise leave a stale hash that looks valid. The file
//! carries a format version; a cache of another version is an empty one.

use crate::manifest;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Files changed this recently are hashed but not remembered.
pub const RACY_SECS: u64 = 2;

/// The on-disk format; records of another version are not read.
const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    size: u64,
    mtime_ns: i128,
    ino: u64,
    sha256: String,
}

/// A file without a version (written before there was one) reads as version 0: not an
/// error, just records that are not trusted.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
struct OnDisk {
    version: u32,
    entries: HashMap<String, Record>,
}

/// A cache file that exists but cannot be used; the caller starts from an empty cache.
#[derive(Debug, thiserror::Error)]
#[error("hash cache {}: {reason}", file.display())]
pub struct LoadError {
    /// The cache file.
    pub file: PathBuf,
    /// Why it was not read.
    pub reason: String,
}

/// The cache, loaded from and saved to one JSON file.
#[derive(Debug)]
pub struct HashCache {
    file: PathBuf,
    entries: HashMap<String, Record>,
    used: HashSet<String>,
    changed: bool,
    /// How many hashes were served from the cache / computed, for diagnostics.
    pub hits: u64,
    /// See `hits`.
    pub misses: u64,
}

fn stamp(meta: &fs::Metadata) -> (u64, i128, u64) {
    let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    (meta.len(), mtime_ns, meta.ino())
}

impl HashCache {
    /// An empty cache that will be saved to `file`.
    pub fn empty(file: &Path) -> HashCache {
        HashCache {
            file: file.to_path_buf(),
            entries: HashMap::new(),
            used: HashSet::new(),
            changed: false,
            hits: 0,
            misses: 0,
        }
    }

    /// Loads the cache at `file`. A missing file or one of another format version is an
    /// empty cache; an unreadable or corrupt one is an error the caller reports before
    /// going on with [`HashCache::empty`] (a cache only saves time).
    pub fn load(file: &Path) -> Result<HashCache, LoadError> {
        let fail = |reason: String| LoadError {
            file: file.to_path_buf(),
            reason,
        };
        let mut cache = HashCache::empty(file);
        let bytes = match fs::read(file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(cache),
            Err(e) => return Err(fail(e.to_string())),
        };
        match serde_json::from_slice::<OnDisk>(&bytes) {
            Ok(d) if d.version == FORMAT_VERSION => cache.entries = d.entries,
            Ok(_) => {}
            Err(e) => return Err(fail(e.to_string())),
        }
        Ok(cache)
    }

    /// The file the cache is saved to.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Whether [`HashCache::save`] has anything to write.
    pub fn has_changes(&self) -> bool {
        self.changed
    }

    /// The SHA-256 of the file at `path` whose metadata is `meta`, from the cache when the
    /// file is unchanged.
    pub fn hash(&mut self, path: &Path, meta: &fs::Metadata) -> io::Result<String> {
        let key = std::path::absolute(path)?.to_string_lossy().into_owned();
        let (size, mtime_ns, ino) = stamp(meta);
        self.used.insert(key.clone());
        if let Some(r) = self.entries.get(&key)
            && r.size == size
            && r.mtime_ns == mtime_ns
            && r.ino == ino
        {
            self.hits += 1;
            return Ok(r.sha256.clone());
        }
        self.misses += 1;
        let sha256 = manifest::sha256_file(path)?;
        self.keep(key, (size, mtime_ns, ino), &sha256);
        Ok(sha256)
    }

    /// Records that the file at `path` (metadata `meta`) holds content of `sha256`, known
    /// without reading it: a file the agent verified while receiving it and then renamed
    /// into place. The same rule as for a computed hash applies (a file written within
    /// [`RACY_SECS`] is not remembered).
    pub fn remember(&mut self, path: &Path, meta: &fs::Metadata, sha256: &str) -> io::Result<()> {
        let key = std::path::absolute(path)?.to_string_lossy().into_owned();
        self.used.insert(key.clone());
        self.keep(key, stamp(meta), sha256);
        Ok(())
    }

    /// Stores a record unless the file changed too recently to trust its stamp (then any
    /// older record of it goes).
    fn keep(&mut self, key: String, (size, mtime_ns, ino): (u64, i128, u64), sha256: &str) {
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos() as i128;
        if now_ns - mtime_ns > i128::from(RACY_SECS) * 1_000_000_000 {
            self.entries.insert(
                key,
                Record {
                    size,
                    mtime_ns,
                    ino,
                    sha256: sha256.to_string(),
                },
            );
            self.changed = true;
        } else if self.entries.remove(&key).is_some() {
            self.changed = true;
        }
    }

    /// The SHA-256 of `path` when it is a regular file (not followed when a link), `None`
    /// when it is something else or absent.
    pub fn file_hash(&mut self, path: &Path) -> io::Result<Option<String>> {
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if !meta.file_type().is_file() {
            return Ok(None);
        }
        self.hash(path, &meta).map(Some)
    }

    /// Writes the cache back (atomically, mode 0600) when it changed; the directory it goes
    /// in must exist. Records not used by this run are kept while their file is still there
    /// unchanged, so alternating between two rootfs trees does not rehash either; records
    /// of vanished files are dropped.
    pub fn save(&mut self) -> io::Result<()> {
        if !self.changed {
            return Ok(());
        }
        let used = &self.used;
        self.entries.retain(|key, r| {
            used.contains(key)
                || fs::symlink_metadata(key).is_ok_and(|m| stamp(&m) == (r.size, r.mtime_ns, r.ino))
        });
        let disk = OnDisk {
            version: FORMAT_VERSION,
            entries: std::mem::take(&mut self.entries),
        };
        let result = serde_json::to_vec(&disk)
            .map_err(io::Error::other)
            .and_then(|bytes| crate::atomic::write_private(&self.file, &bytes));
        self.entries = disk.entries;
        result?;
        self.changed = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn age(path: &Path, secs: u64) {
        let f = fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn unchanged_files_are_not_rehashed_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        fs::write(&file, b"hello").unwrap();
        age(&file, 60);
        let cache_file = dir.path().join("hashes.json");

        let mut cache = HashCache::load(&cache_file).unwrap();
        let meta = fs::metadata(&file).unwrap();
        let h = cache.hash(&file, &meta).unwrap();
        assert_eq!(h, manifest::sha256_bytes(b"hello"));
        assert_eq!((cache.hits, cache.misses), (0, 1));
        cache.save().unwrap();
        let mode = fs::metadata(&cache_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let mut cache = HashCache::load(&cache_file).unwrap();
        assert_eq!(cache.hash(&file, &meta).unwrap(), h);
        assert_eq!((cache.hits, cache.misses), (1, 0));

        // Same size, new mtime: rehashed.
        fs::write(&file, b"HELLO").unwrap();
        age(&file, 30);
        let meta = fs::metadata(&file).unwrap();
        assert_eq!(
            cache.hash(&file, &meta).unwrap(),
            manifest::sha256_bytes(b"HELLO")
        );
        assert_eq!(cache.misses, 1);
    }

    #[test]
    fn a_new_inode_with_the_same_size_and_mtime_is_rehashed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        fs::write(&file, b"one").unwrap();
        age(&file, 60);
        let mut cache = HashCache::load(&dir.path().join("hashes.json")).unwrap();
        cache.hash(&file, &fs::metadata(&file).unwrap()).unwrap();
        // Another file of the same size renamed over it, with the same mtime.
        let other = dir.path().join("b");
        fs::write(&other, b"two").unwrap();
        let mtime = fs::metadata(&file).unwrap().modified().unwrap();
        fs::File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        fs::rename(&other, &file).unwrap();
        assert_eq!(
            cache.file_hash(&file).unwrap().as_deref(),
            Some(manifest::sha256_bytes(b"two").as_str())
        );
        assert_eq!(cache.misses, 2);
    }

    #[test]
    fn a_remembered_hash_is_served_without_reading_and_a_fresh_file_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        fs::write(&file, b"verified on arrival").unwrap();
        age(&file, 60);
        let cache_file = dir.path().join("hashes.json");
        let mut cache = HashCache::load(&cache_file).unwrap();
        let known = manifest::sha256_bytes(b"verified on arrival");
        cache
            .remember(&file, &fs::metadata(&file).unwrap(), &known)
            .unwrap();
        cache.save().unwrap();
        let mut cache = HashCache::load(&cache_file).unwrap();
        assert_eq!(cache.file_hash(&file).unwrap(), Some(known.clone()));
        assert_eq!((cache.hits, cache.misses), (1, 0), "served from the record");

        let fresh = dir.path().join("b");
        fs::write(&fresh, b"just written").unwrap();
        cache
            .remember(&fresh, &fs::metadata(&fresh).unwrap(), &known)
            .unwrap();
        assert_eq!(
            cache.file_hash(&fresh).unwrap(),
            Some(manifest::sha256_bytes(b"just written")),
            "a file written just now is read, not taken on trust"
        );
    }

    #[test]
    fn fresh_files_are_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        fs::write(&file, b"x").unwrap();
        let cache_file = dir.path().join("hashes.json");
        let mut cache = HashCache::load(&cache_file).unwrap();
        cache.hash(&file, &fs::metadata(&file).unwrap()).unwrap();
        cache.save().unwrap();
        let mut cache = HashCache::load(&cache_file).unwrap();
        cache.hash(&file, &fs::metadata(&file).unwrap()).unwrap();
        assert_eq!(cache.misses, 1, "a file written just now is hashed again");
    }

    #[test]
    fn only_regular_files_have_a_file_hash() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = HashCache::empty(&dir.path().join("hashes.json"));
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        std::os::unix::fs::symlink(&file, dir.path().join("l")).unwrap();
        assert!(cache.file_hash(&file).unwrap().is_some());
        assert_eq!(cache.file_hash(&dir.path().join("l")).unwrap(), None);
        assert_eq!(cache.file_hash(dir.path()).unwrap(), None);
        assert_eq!(cache.file_hash(&dir.path().join("absent")).unwrap(), None);
    }

    #[test]
    fn corrupt_or_other_version_caches_are_not_read_and_vanished_files_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache_file = dir.path().join("hashes.json");
        fs::write(&cache_file, b"{not json").unwrap();
        assert!(HashCache::load(&cache_file).is_err());
        let mut cache = HashCache::empty(&cache_file);
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for f in [&a, &b] {
            fs::write(f, b"1").unwrap();
            age(f, 60);
            cache.hash(f, &fs::metadata(f).unwrap()).unwrap();
        }
        cache.save().unwrap();
        fs::remove_file(&b).unwrap();
        let mut cache = HashCache::load(&cache_file).unwrap();
        cache
            .hash(&dir.path().join("a"), &fs::metadata(&a).unwrap())
            .unwrap();
        // Force a save with one new record; b's record must go.
        let c = dir.path().join("c");
        fs::write(&c, b"2").unwrap();
        age(&c, 60);
        cache.hash(&c, &fs::metadata(&c).unwrap()).unwrap();
        cache.save().unwrap();
        let text = fs::read_to_string(&cache_file).unwrap();
        assert!(
            text.contains("/a\"") && text.contains("/c\"") && !text.contains("/b\""),
            "{text}"
        );

        let other = text.replace("\"version\":1", "\"version\":2");
        assert_ne!(other, text);
        fs::write(&cache_file, other).unwrap();
        let mut cache = HashCache::load(&cache_file).unwrap();
        cache.hash(&a, &fs::metadata(&a).unwrap()).unwrap();
        assert_eq!(cache.misses, 1, "another version's records are not trusted");
    }
}
