//! The per-cluster state directory holding the registry's TLS material:
//! `<state>/clusters/<cluster>/registry-tls/` (mode 0700) with `ca.crt`, `ca.key`,
//! `server.crt`, `server.key` (keys 0600) and `server.json` (the names the server
//! certificate was issued for and when it expires, so reuse needs no X.509 parser).
//! Every file is written under a temporary name, synced and renamed: an interrupted apply
//! leaves the old material or the new, never half of either.

use crate::clusterfile::Secret;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
#[error("registry TLS state {}: {source}; check that it is yours and writable (it must be private: mode 0700)", path.display())]
pub struct StoreError {
    /// The file or directory.
    pub path: PathBuf,
    /// The error.
    #[source]
    pub source: io::Error,
}

/// A stored server certificate.
pub(super) struct Server {
    pub cert_pem: String,
    pub key_pem: String,
    pub sans: Vec<String>,
    pub not_after_unix: i64,
}

#[derive(Serialize, Deserialize)]
struct ServerMeta {
    sans: Vec<String>,
    not_after_unix: i64,
}

/// One cluster's registry TLS directory.
#[derive(Clone, Debug)]
pub struct TlsStore {
    dir: PathBuf,
    cluster: String,
    /// Whether new material is written; a dry run reads what is stored and keeps what it
    /// would generate in memory.
    persist: bool,
}

impl TlsStore {
    /// The store of `cluster` under `state_root` (see [`super::state_root`]).
    pub fn new(state_root: &Path, cluster: &str) -> TlsStore {
        TlsStore {
            dir: state_root
                .join("clusters")
                .join(cluster)
                .join("registry-tls"),
            cluster: cluster.to_string(),
            persist: true,
        }
    }

    /// The same store, read but never written (for a dry run).
    pub fn read_only(mut self) -> TlsStore {
        self.persist = false;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn cluster(&self) -> &str {
        &self.cluster
    }

    fn err(&self, path: &Path) -> impl Fn(io::Error) -> StoreError {
        let path = path.to_path_buf();
        move |source| StoreError {
            path: path.clone(),
            source,
        }
    }

    /// The directory, made private: 0700, and so is every parent created here.
    fn ensure_dir(&self) -> Result<(), StoreError> {
        use std::os::unix::fs::DirBuilderExt;
        let missing: Vec<&Path> = self.dir.ancestors().take_while(|d| !d.exists()).collect();
        for dir in missing.into_iter().rev() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(self.err(dir))?;
        }
        // A directory that exists keeps being ours: its mode is made private again.
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(self.err(&self.dir))
    }

    fn read(&self, name: &str) -> Result<Option<String>, StoreError> {
        let path = self.dir.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(&path)(e)),
        }
    }

    fn write(&self, name: &str, text: &str) -> Result<(), StoreError> {
        let path = self.dir.join(name);
        installer_proto::atomic::write_private(&path, text.as_bytes()).map_err(self.err(&path))
    }

    /// The CA's certificate and key, when both are stored.
    pub(super) fn load_ca(&self) -> Result<Option<(String, Secret)>, StoreError> {
        match (self.read("ca.crt")?, self.read("ca.key")?) {
            (Some(cert), Some(key)) => Ok(Some((cert, Secret::new(key)))),
            _ => Ok(None),
        }
    }

    /// Stores a new CA; the server certificate it replaces goes with it.
    pub(super) fn save_ca(&self, cert: &str, key: &Secret) -> Result<(), StoreError> {
        if !self.persist {
            return Ok(());
        }
        self.ensure_dir()?;
        for stale in ["server.json", "server.crt", "server.key"] {
            let path = self.dir.join(stale);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.err(&path)(e)),
            }
        }
        self.write("ca.key", key.expose())?;
        self.write("ca.crt", cert)
    }

    /// The server certificate, when it and what it was issued for are stored.
    pub(super) fn load_server(&self) -> Result<Option<Server>, StoreError> {
        let (Some(cert_pem), Some(key_pem), Some(meta)) = (
            self.read("server.crt")?,
            self.read("server.key")?,
            self.read("server.json")?,
        ) else {
            return Ok(None);
        };
        // Unreadable metadata: issue again rather than trust a certificate of unknown names.
        let Ok(meta) = serde_json::from_str::<ServerMeta>(&meta) else {
            return Ok(None);
        };
        Ok(Some(Server {
            cert_pem,
            key_pem,
            sans: meta.sans,
            not_after_unix: meta.not_after_unix,
        }))
    }

    /// Stores a server certificate with what it was issued for. The metadata goes last:
    /// until it is written, the pair counts as absent.
    pub(super) fn save_server(
        &self,
        cert: &str,
        key: &str,
        sans: &[String],
        not_after_unix: i64,
    ) -> Result<(), StoreError> {
        if !self.persist {
            return Ok(());
        }
        self.ensure_dir()?;
        let meta = self.dir.join("server.json");
        match fs::remove_file(&meta) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.err(&meta)(e)),
        }
        self.write("server.key", key)?;
        self.write("server.crt", cert)?;
        let meta_text = serde_json::to_string_pretty(&ServerMeta {
            sans: sans.to_vec(),
            not_after_unix,
        })
        .map_err(|e| self.err(&meta)(io::Error::other(e)))?;
        self.write("server.json", &meta_text)
    }
}
