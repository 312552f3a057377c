//! A metadata snapshot of the watched trees: one compact entry per path (lstat only, no
//! content), sorted by path so two snapshots diff in one merge pass. Saved in a small binary
//! format (paths front-coded against the previous one) so a step interrupted by an agent
//! crash can still be diffed by the next agent.

use super::WatchError;
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What a path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A FIFO, socket or device node.
    Other,
}

impl Kind {
    /// The kind of a file type.
    pub fn of(ft: fs::FileType) -> Kind {
        if ft.is_file() {
            Kind::File
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else {
            // Sockets, FIFOs, block and character devices alike: never copied or re-created.
            Kind::Other
        }
    }

    fn code(self) -> u8 {
        match self {
            Kind::File => 0,
            Kind::Dir => 1,
            Kind::Symlink => 2,
            Kind::Other => 3,
        }
    }

    fn from_code(c: u8) -> Option<Kind> {
        [Kind::File, Kind::Dir, Kind::Symlink, Kind::Other]
            .get(usize::from(c))
            .copied()
    }
}

/// Under a copy tree.
pub(crate) const IN_COPY: u8 = 1;
/// A directory whose contents were not walked: shallow, another mount, or unreadable.
pub(crate) const OPAQUE: u8 = 2;
/// (after-snapshots) A directory new since `before` in a non-copy tree, not walked.
pub(crate) const NEW_OPAQUE: u8 = 4;

/// One path's metadata as lstat reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// What it is.
    pub kind: Kind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Status change time, ns since the epoch.
    pub ctime_ns: i64,
    /// Inode number.
    pub ino: u64,
    /// Device.
    pub dev: u64,
    /// A symlink's target (UTF-8 targets only).
    pub target: Option<Box<str>>,
    pub(crate) flags: u8,
}

impl Meta {
    /// The metadata of `m` (from lstat), with a symlink's `target`.
    pub(crate) fn from_std(m: &fs::Metadata, target: Option<Box<str>>, flags: u8) -> Meta {
        Meta {
            kind: Kind::of(m.file_type()),
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime_ns: crate::fsutil::mtime_ns(m),
            ctime_ns: crate::fsutil::ctime_ns(m),
            ino: m.ino(),
            dev: m.dev(),
            target,
            flags,
        }
    }

    /// lstat of `real` (with a symlink's target), None when nothing is there.
    pub(crate) fn probe(real: &Path) -> std::io::Result<Option<Meta>> {
        match fs::symlink_metadata(real) {
            Ok(m) => {
                let target = if m.file_type().is_symlink() {
                    fs::read_link(real)?.to_str().map(Box::from)
                } else {
                    None
                };
                Ok(Some(Meta::from_std(&m, target, 0)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A directory whose contents are in the snapshot.
    pub fn walked(&self) -> bool {
        self.kind == Kind::Dir && self.flags & (OPAQUE | NEW_OPAQUE) == 0
    }

    /// Under a copy tree.
    pub fn in_copy_tree(&self) -> bool {
        self.flags & IN_COPY != 0
    }
}

/// One path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub path: Box<str>,
    pub meta: Meta,
}

/// Every watched path at one moment, sorted by path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub(crate) entries: Vec<Entry>,
}

const MAGIC: &[u8; 8] = b"IWSNAP1\n";

impl Snapshot {
    pub(crate) fn from_unsorted(mut entries: Vec<Entry>) -> Snapshot {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        // Two trees never share a path, so this only guards against a walk racing a rename.
        entries.dedup_by(|a, b| a.path == b.path);
        Snapshot { entries }
    }

    /// How many paths.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The metadata recorded for a host path.
    pub fn get(&self, path: &str) -> Option<&Meta> {
        self.entries
            .binary_search_by(|e| (*e.path).cmp(path))
            .ok()
            .map(|i| &self.entries[i].meta)
    }

    /// Every path with its metadata, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Meta)> {
        self.entries.iter().map(|e| (&*e.path, &e.meta))
    }

    /// Writes the snapshot to `path` atomically (mode 0600).
    pub fn save(&self, path: &Path) -> Result<(), WatchError> {
        let mut out = Vec::with_capacity(16 + self.entries.len() * 72);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        let mut prev: &str = "";
        for e in &self.entries {
            let shared = common_prefix(prev, &e.path);
            let suffix = &e.path.as_bytes()[shared..];
            put_len(&mut out, shared);
            put_len(&mut out, suffix.len());
            out.extend_from_slice(suffix);
            let m = &e.meta;
            out.push(m.kind.code());
            out.push(m.flags);
            for v in [m.mode, m.uid, m.gid] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [m.size, m.mtime_ns as u64, m.ctime_ns as u64, m.ino, m.dev] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            if m.kind == Kind::Symlink {
                let t = m.target.as_deref().unwrap_or("");
                put_len(&mut out, t.len());
                out.extend_from_slice(t.as_bytes());
            }
            prev = &e.path;
        }
        fsutil::write_atomic(path, &out, 0o600)?;
        Ok(())
    }

    /// Reads a snapshot [`Snapshot::save`] wrote.
    pub fn load(path: &Path) -> Result<Snapshot, WatchError> {
        let bytes = fs::read(path).map_err(fsutil::ctx(path, "reading"))?;
        decode(&bytes).ok_or_else(|| WatchError::Corrupt {
            path: path.display().to_string(),
        })
    }
}

fn common_prefix(a: &str, b: &str) -> usize {
    let n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    // Back off to a char boundary so every suffix is valid UTF-8 on its own.
    (0..=n).rev().find(|&i| b.is_char_boundary(i)).unwrap_or(0)
}

/// Lengths are paths and link targets: below PATH_MAX, so 32 bits are plenty.
fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_le_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }
    fn len(&mut self) -> Option<usize> {
        self.u32().map(|n| n as usize)
    }
}

fn decode(bytes: &[u8]) -> Option<Snapshot> {
    let mut r = Reader { buf: bytes };
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let count = usize::try_from(r.u64()?).ok()?;
    // Each entry takes at least 62 bytes: a count beyond that is corruption, not a reason
    // to allocate.
    let mut entries = Vec::with_capacity(count.min(bytes.len() / 62));
    let mut prev = String::new();
    for _ in 0..count {
        let shared = r.len()?;
        let n = r.len()?;
        let suffix = std::str::from_utf8(r.take(n)?).ok()?;
        if shared > prev.len() || !prev.is_char_boundary(shared) {
            return None;
        }
        let path = format!("{}{suffix}", &prev[..shared]);
        if path <= prev && !entries.is_empty() {
            return None;
        }
        let kind = Kind::from_code(r.u8()?)?;
        let flags = r.u8()?;
        let (mode, uid, gid) = (r.u32()?, r.u32()?, r.u32()?);
        let (size, mtime, ctime, ino, dev) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        let target = if kind == Kind::Symlink {
            let n = r.len()?;
            Some(Box::from(std::str::from_utf8(r.take(n)?).ok()?))
        } else {
            None
        };
        let meta = Meta {
            kind,
            mode,
            uid,
            gid,
            size,
            mtime_ns: mtime as i64,
            ctime_ns: ctime as i64,
            ino,
            dev,
            target,
            flags,
        };
        entries.push(Entry {
            path: path.as_str().into(),
            meta,
        });
        prev = path;
    }
    if !r.buf.is_empty() {
        return None;
    }
    Some(Snapshot { entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: Kind, target: Option<&str>) -> Meta {
        Meta {
            kind,
            mode: 0o4755,
            uid: 1,
            gid: 2,
            size: 3,
            mtime_ns: -5,
            ctime_ns: 1_700_000_000_123_456_789,
            ino: u64::MAX,
            dev: 9,
            target: target.map(Box::from),
            flags: IN_COPY | OPAQUE,
        }
    }

    #[test]
    fn save_and_load_round_trip_front_coded_paths() {
        let snap = Snapshot::from_unsorted(vec![
            Entry {
                path: "/etc/b".into(),
                meta: meta(Kind::File, None),
            },
            Entry {
                path: "/etc".into(),
                meta: meta(Kind::Dir, None),
            },
            Entry {
                path: "/etc/a-é".into(),
                meta: meta(Kind::Symlink, Some("../x")),
            },
            Entry {
                path: "/etc/a-éa".into(),
                meta: meta(Kind::Other, None),
            },
        ]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snap");
        snap.save(&file).unwrap();
        let back = Snapshot::load(&file).unwrap();
        assert_eq!(back, snap);
        assert_eq!(
            back.get("/etc/a-é").unwrap().target.as_deref(),
            Some("../x")
        );
        assert!(back.get("/etc/c").is_none());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn truncated_or_foreign_files_are_refused() {
        let snap = Snapshot::from_unsorted(vec![Entry {
            path: "/etc/x".into(),
            meta: meta(Kind::Symlink, Some("y")),
        }]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("snap");
        snap.save(&file).unwrap();
        let bytes = fs::read(&file).unwrap();
        for cut in [0, 5, 20, bytes.len() - 1] {
            fs::write(&file, &bytes[..cut]).unwrap();
            assert!(
                matches!(Snapshot::load(&file), Err(WatchError::Corrupt { .. })),
                "{cut}"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        fs::write(&file, extra).unwrap();
        assert!(Snapshot::load(&file).is_err());
    }
}
