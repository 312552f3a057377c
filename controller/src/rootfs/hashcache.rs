//! Content hashes remembered across runs, so that a multi-gigabyte rootfs is hashed once and
//! later applies only stat its files.
//!
//! A record is trusted while the file's size, mtime (nanoseconds) and inode are unchanged.
//! Files modified within [`RACY_SECS`] of being hashed are not recorded: a write in the same
//! mtime tick after hashing would otherwise leave a stale hash that looks valid.

use installer_proto::manifest;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Files changed this recently are hashed but not remembered.
const RACY_SECS: u64 = 2;

const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    size: u64,
    mtime_ns: i128,
    ino: u64,
    sha256: String,
}

#[derive(Default, Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    entries: HashMap<String, Record>,
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
    /// Loads the cache at `file`; a missing or unreadable cache is an empty one (it only
    /// costs time).
    pub fn load(file: &Path) -> HashCache {
        let entries = match fs::read(file) {
            Ok(bytes) => match serde_json::from_slice::<OnDisk>(&bytes) {
                Ok(d) if d.version == FORMAT_VERSION => d.entries,
                Ok(_) => HashMap::new(),
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "ignoring unreadable hash cache");
                    HashMap::new()
                }
            },
            Err(_) => HashMap::new(),
        };
        HashCache {
            file: file.to_path_buf(),
            entries,
            used: HashSet::new(),
            changed: false,
            hits: 0,
            misses: 0,
        }
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
                    sha256: sha256.clone(),
                },
            );
            self.changed = true;
        } else {
            self.entries.remove(&key);
        }
        Ok(sha256)
    }

    /// Writes the cache back (atomically) when it changed. Records not used by this run
    /// are kept while their file is still there unchanged, so alternating between two
    /// rootfs trees does not rehash either; records of vanished files are dropped.
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
        let result = write_json_atomic(&self.file, &disk);
        self.entries = disk.entries;
        result?;
        self.changed = false;
        Ok(())
    }
}

fn write_json_atomic(file: &Path, value: &OnDisk) -> io::Result<()> {
    let dir = file.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(io::BufWriter::new(tmp.as_file_mut()), value)?;
    tmp.as_file_mut().flush()?;
    tmp.as_file().sync_all()?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        let cache_file = dir.path().join("cache/hashes.json");

        let mut cache = HashCache::load(&cache_file);
        let meta = fs::metadata(&file).unwrap();
        let h = cache.hash(&file, &meta).unwrap();
        assert_eq!(h, manifest::sha256_bytes(b"hello"));
        assert_eq!((cache.hits, cache.misses), (0, 1));
        cache.save().unwrap();

        let mut cache = HashCache::load(&cache_file);
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
    fn fresh_files_are_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        fs::write(&file, b"x").unwrap();
        let cache_file = dir.path().join("hashes.json");
        let mut cache = HashCache::load(&cache_file);
        cache.hash(&file, &fs::metadata(&file).unwrap()).unwrap();
        cache.save().unwrap();
        let mut cache = HashCache::load(&cache_file);
        cache.hash(&file, &fs::metadata(&file).unwrap()).unwrap();
        assert_eq!(cache.misses, 1, "a file written just now is hashed again");
    }

    #[test]
    fn corrupt_cache_is_ignored_and_vanished_files_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache_file = dir.path().join("hashes.json");
        fs::write(&cache_file, b"{not json").unwrap();
        let mut cache = HashCache::load(&cache_file);
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for f in [&a, &b] {
            fs::write(f, b"1").unwrap();
            age(f, 60);
            cache.hash(f, &fs::metadata(f).unwrap()).unwrap();
        }
        cache.save().unwrap();
        fs::remove_file(&b).unwrap();
        let mut cache = HashCache::load(&cache_file);
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
    }
}
