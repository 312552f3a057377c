//! A deterministic layer tar: entries sorted by path, every parent directory present, owner
//! root, mtime 0, no user or group names. The same inputs give the same bytes, so digests
//! (and the recipe hashes built on them) are stable from one build to the next.

use installer_proto::manifest::hex;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Where a file's content comes from.
#[derive(Clone, Debug)]
pub enum Content {
    /// A file on disk, read when the tar is written.
    Path(PathBuf),
    /// Bytes held in memory.
    Bytes(Vec<u8>),
}

/// One entry of a [`Layer`].
#[derive(Clone, Debug)]
pub enum Entry {
    /// A directory with its permission bits.
    Dir {
        /// Permission bits, e.g. `0o755` or `0o1777`.
        mode: u32,
    },
    /// A regular file.
    File {
        /// The content.
        content: Content,
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link.
    Symlink {
        /// The link target, as stored.
        target: String,
    },
}

/// The contents of one image layer, keyed by path relative to the image root
/// (`usr/bin/x`, no leading slash).
#[derive(Clone, Debug, Default)]
pub struct Layer {
    entries: BTreeMap<String, Entry>,
}

/// A layer written out: where its tar is, its size and its sha256 digest.
#[derive(Clone, Debug)]
pub struct WrittenLayer {
    /// The tar file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// `sha256:<hex>` of the (uncompressed) tar: both the blob digest and the diff ID.
    pub digest: String,
}

impl Layer {
    /// An empty layer.
    pub fn new() -> Layer {
        Layer::default()
    }

    /// Adds a directory (and its parents, mode 0755, unless already present).
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Layer {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, Entry::Dir { mode });
        self
    }

    /// Adds a file copied from `source` when the tar is written.
    pub fn file_from(&mut self, path: &str, source: &Path, mode: u32) -> &mut Layer {
        self.insert(
            path,
            Entry::File {
                content: Content::Path(source.to_path_buf()),
                mode,
            },
        )
    }

    /// Adds a file with the given content.
    pub fn file_bytes(&mut self, path: &str, bytes: impl Into<Vec<u8>>, mode: u32) -> &mut Layer {
        self.insert(
            path,
            Entry::File {
                content: Content::Bytes(bytes.into()),
                mode,
            },
        )
    }

    /// Adds a symbolic link `path -> target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Layer {
        self.insert(
            path,
            Entry::Symlink {
                target: target.to_owned(),
            },
        )
    }

    /// The entries, sorted by path.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn insert(&mut self, path: &str, entry: Entry) -> &mut Layer {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, entry);
        self
    }

    fn parents(&mut self, path: &str) {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = &path[..at + i];
            self.entries
                .entry(parent.to_owned())
                .or_insert(Entry::Dir { mode: 0o755 });
            at += i + 1;
        }
    }

    /// Writes the layer tar to `out` and returns its size and digest.
    pub fn write_to(&self, out: &Path) -> io::Result<WrittenLayer> {
        let file = File::create(out)?;
        let mut hashing = HashingWriter::new(io::BufWriter::new(file));
        self.write_tar(&mut hashing)?;
        let (writer, size, digest) = hashing.finish();
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(WrittenLayer {
            path: out.to_path_buf(),
            size,
            digest,
        })
    }

    /// Writes the layer as a tar stream.
    pub fn write_tar<W: Write>(&self, out: W) -> io::Result<()> {
        let mut builder = tar::Builder::new(out);
        for (path, entry) in &self.entries {
            match entry {
                Entry::Dir { mode } => {
                    let mut header = header(tar::EntryType::Directory, *mode, 0);
                    builder.append_data(&mut header, format!("{path}/"), io::empty())?;
                }
                Entry::File { content, mode } => match content {
                    Content::Bytes(bytes) => {
                        let mut header = header(tar::EntryType::Regular, *mode, bytes.len() as u64);
                        builder.append_data(&mut header, path, bytes.as_slice())?;
                    }
                    Content::Path(source) => {
                        let file = File::open(source).map_err(|e| annotate(e, source))?;
                        let len = file.metadata()?.len();
                        let mut header = header(tar::EntryType::Regular, *mode, len);
                        builder.append_data(&mut header, path, file.take(len))?;
                    }
                },
                Entry::Symlink { target } => {
                    let mut header = header(tar::EntryType::Symlink, 0o777, 0);
                    builder.append_link(&mut header, path, target)?;
                }
            }
        }
        builder.into_inner()?.flush()
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn clean(path: &str) -> String {
    path.trim_matches('/').to_owned()
}

/// `sha256:<hex>` of a byte string.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// A writer that counts and hashes what passes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the byte count and `sha256:<hex>`.
    pub(crate) fn finish(self) -> (W, u64, String) {
        let digest = format!("sha256:{}", hex(&self.hasher.finalize()));
        (self.inner, self.size, digest)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(layer: &Layer) -> Vec<(String, tar::EntryType, u32)> {
        let mut bytes = Vec::new();
        layer.write_tar(&mut bytes).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                assert_eq!(h.mtime().unwrap(), 0);
                assert_eq!(h.uid().unwrap(), 0);
                (
                    e.path().unwrap().display().to_string(),
                    h.entry_type(),
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn parents_are_added_and_entries_sorted() {
        let mut layer = Layer::new();
        layer
            .file_bytes("/usr/bin/x", "hi", 0o755)
            .dir("tmp", 0o1777)
            .symlink("lib64/ld.so", "/lib/ld.so");
        let got = listing(&layer);
        let names: Vec<&str> = got.iter().map(|(p, _, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "lib64/",
                "lib64/ld.so",
                "tmp/",
                "usr/",
                "usr/bin/",
                "usr/bin/x"
            ]
        );
        assert_eq!(got[2].2, 0o1777);
        assert_eq!(got[1].1, tar::EntryType::Symlink);
        assert_eq!(got[5].2, 0o755);
    }

    #[test]
    fn same_inputs_same_digest() {
        let dir = tempfile::tempdir().unwrap();
        let build = |name: &str| {
            let mut layer = Layer::new();
            layer
                .file_bytes("etc/a", "a", 0o644)
                .file_bytes("b", "b", 0o600);
            layer.write_to(&dir.path().join(name)).unwrap()
        };
        let (one, two) = (build("one.tar"), build("two.tar"));
        assert_eq!(one.digest, two.digest);
        assert_eq!(one.size, two.size);
        let bytes = std::fs::read(&one.path).unwrap();
        assert_eq!(sha256_digest(&bytes), one.digest);
        assert_eq!(bytes.len() as u64, one.size);
    }
}
