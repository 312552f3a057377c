//! Reading an image layout's files: every open goes through one `cap_std` handle of the
//! layout (a name from a manifest, `../x` or `/etc/x`, cannot reach outside it), and every
//! blob is checked against its sha256 digest before anything uses it.

use super::ImageError;
use crate::rootfs::extract::{self, Compression};
use cap_std::fs::Dir;
use installer_proto::manifest::sha256_reader;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The most a JSON document of an image (index, manifest, config, manifest.json) may be:
/// real ones are kilobytes, and they are read whole into memory.
const MAX_JSON: u64 = 16 << 20;

/// What a blob's content must hash to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// The file itself (OCI descriptors; a docker config named by its digest).
    File {
        /// Lowercase hex sha256.
        sha256: String,
        /// The size the descriptor gives, when it gives one.
        size: Option<u64>,
    },
    /// The file once decompressed (a docker layer checked against the config's `diff_ids`).
    Uncompressed {
        /// Lowercase hex sha256.
        sha256: String,
    },
}

/// An image layout on the local disk.
pub(crate) struct Store {
    dir: Dir,
    /// How error messages name a file of the layout: `<dir>/` for a layout directory,
    /// `<archive>:` (and the archive's top directory) for one unpacked from an archive.
    label: String,
    /// The image as the user gave it (the layout directory or the archive).
    pub(crate) image: PathBuf,
}

impl Store {
    /// The layout at `path`; `image` is what the user gave, `prefix` how an entry of the
    /// layout is named inside it (`""` for a directory, `top/` for an archive holding one).
    pub(crate) fn open(
        path: &Path,
        image: &Path,
        in_archive: Option<&str>,
    ) -> Result<Store, ImageError> {
        let dir = Dir::open_ambient_dir(path, cap_std::ambient_authority()).map_err(|e| {
            ImageError::new(image, "the image layout", format!("cannot open it: {e}"))
        })?;
        let label = match in_archive {
            Some(prefix) => format!("{}:{prefix}", image.display()),
            None => format!("{}/", image.display()),
        };
        Ok(Store {
            dir,
            label,
            image: image.to_path_buf(),
        })
    }

    /// How errors name `rel`: `/site/image.tar:blobs/sha256/…`.
    pub(crate) fn label(&self, rel: &str) -> PathBuf {
        PathBuf::from(format!("{}{rel}", self.label))
    }

    /// Whether `rel` is there (following links inside the layout only).
    pub(crate) fn exists(&self, rel: &str) -> bool {
        self.dir.metadata(rel).is_ok()
    }

    fn open_file(&self, rel: &str, what: &str) -> Result<cap_std::fs::File, ImageError> {
        self.dir.open(rel).map_err(|e| {
            let why = if e.kind() == io::ErrorKind::NotFound {
                "it is missing; the image is incomplete: save it again".to_string()
            } else {
                format!("cannot open it ({e}); a name in the image must stay inside it")
            };
            ImageError::new(&self.image, &format!("{what} {rel:?}"), why)
        })
    }

    /// Reads the JSON document `rel` whole, checked against `expect` when given.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
        &self,
        rel: &str,
        what: &str,
        expect: Option<&Expect>,
    ) -> Result<T, ImageError> {
        let named = format!("{what} {rel:?}");
        let file = self.open_file(rel, what)?;
        let mut bytes = Vec::new();
        file.into_std()
            .take(MAX_JSON + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ImageError::new(&self.image, &named, format!("reading it: {e}")))?;
        if bytes.len() as u64 > MAX_JSON {
            return Err(ImageError::new(
                &self.image,
                &named,
                format!("larger than {MAX_JSON} bytes, far more than any image's metadata"),
            ));
        }
        if let Some(expect) = expect {
            self.check(rel, what, expect, &mut bytes.as_slice(), bytes.len() as u64)?;
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::new(&self.image, &named, format!("not a valid {what}: {e}")))
    }

    /// Checks the blob `rel` against `expect`, reading it whole.
    pub(crate) fn verify(&self, rel: &str, what: &str, expect: &Expect) -> Result<(), ImageError> {
        let file = self.open_file(rel, what)?.into_std();
        let len = file
            .metadata()
            .map_err(|e| ImageError::new(&self.image, &format!("{what} {rel:?}"), e.to_string()))?
            .len();
        let mut reader: Box<dyn Read> = Box::new(file);
        self.check(rel, what, expect, &mut reader, len)
    }

    fn check(
        &self,
        rel: &str,
        what: &str,
        expect: &Expect,
        reader: &mut dyn Read,
        len: u64,
    ) -> Result<(), ImageError> {
        let named = format!("{what} {rel:?}");
        let err = |why: String| ImageError::new(&self.image, &named, why);
        let (want, found) = match expect {
            Expect::File { sha256, size } => {
                if let Some(size) = size.filter(|s| *s != len) {
                    return Err(err(format!(
                        "it is {len} bytes, but the image says {size}; the image is damaged or was altered: save it again"
                    )));
                }
                let found = sha256_reader(reader).map_err(|e| err(format!("reading it: {e}")))?;
                (sha256, found)
            }
            Expect::Uncompressed { sha256 } => {
                let compression =
                    sniff(&mut *reader).map_err(|e| err(format!("reading it: {e}")))?;
                let mut head = compression.1.as_slice();
                let whole = (&mut head).chain(reader);
                let plain = extract::decompress(whole, compression.0)
                    .map_err(|e| err(format!("decompressing it: {e}")))?;
                let found = sha256_reader(plain).map_err(|e| err(format!("reading it: {e}")))?;
                (sha256, found)
            }
        };
        if *want != found {
            return Err(err(format!(
                "its content has sha256:{found}, not sha256:{want} as the image says; the image is damaged or was altered: save it again"
            )));
        }
        Ok(())
    }

    /// The layer `rel` as a decompressed stream (checked before with [`Store::verify`]).
    pub(crate) fn layer(
        &self,
        rel: &str,
        compression: Option<Compression>,
    ) -> Result<Box<dyn Read>, ImageError> {
        let named = format!("layer {rel:?}");
        let err = |e: io::Error| ImageError::new(&self.image, &named, e.to_string());
        let mut file = self.open_file(rel, "layer")?.into_std();
        let compression = match compression {
            Some(c) => c,
            None => {
                let (c, _) = sniff(&mut file).map_err(err)?;
                io::Seek::rewind(&mut file).map_err(err)?;
                c
            }
        };
        extract::decompress(file, compression).map_err(err)
    }
}

/// The compression a stream's first bytes show (gzip, zstd, else none), and those bytes.
fn sniff(reader: &mut dyn Read) -> io::Result<(Compression, Vec<u8>)> {
    let mut head = Vec::with_capacity(4);
    reader.take(4).read_to_end(&mut head)?;
    let c = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    Ok((c, head))
}
