//! The agent's half of the fan-out (SPEC §5.3). A registry host pushes the files other hosts
//! lack from its own rootfs copy into its own registry; another host fetches what it lacks
//! from the registry hosts, every file going through the same [`Receiver`] as the
//! controller's stream — only files this host asked for, each checked against the plan's
//! sha256 before it becomes visible. What the push adds to the registry's storage is
//! recorded, so clean takes it back even when the rootfs copy is kept.

use crate::journal::Journal;
use crate::paths::ClusterPaths;
use crate::receive::Receiver;
use crate::registry_api::blobs::{self, Pushed};
use crate::registry_api::http::Client;
use installer_proto::fanout::{self, BlobRef, Fetched, Published};
use installer_proto::manifest::{EntryKind, join_rel};
use installer_proto::plan::Plan;
use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;

/// How many files are pushed or fetched at once: each is its own connection, and a rootfs of
/// many small files is bound by round trips, not bytes.
const WORKERS: usize = 4;

/// Runs `work` on every item of `items` on up to [`WORKERS`] threads (worker `w` takes items
/// `w`, `w + WORKERS`, …); the results in the items' order, `None` where a worker panicked.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(usize, &T) -> R + Sync,
) -> Vec<Option<R>> {
    let workers = WORKERS.min(items.len()).max(1);
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let work = &work;
                s.spawn(move || {
                    (w..items.len())
                        .step_by(workers)
                        .map(|i| (i, work(i, &items[i])))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            if let Ok(done) = handle.join() {
                for (i, r) in done {
                    slots[i] = Some(r);
                }
            }
        }
    });
    slots
}

/// Pushes `files` from this host's rootfs copy into the registry it runs (at loopback, the
/// server name being the registry domain). A file this host's plan does not hold with the
/// same content, or that lies in the registry's own storage, is not pushed; content pushed
/// once is not pushed again for another path.
pub(crate) fn publish(
    plan: &Plan,
    paths: &ClusterPaths,
    journal: &mut Journal,
    files: &[BlobRef],
) -> Published {
    let mut out = Published::default();
    let client = match Client::new(&plan.registry) {
        Ok(c) => c,
        Err(e) => {
            out.failed = files.iter().map(|f| format!("{}: {e}", f.path)).collect();
            return out;
        }
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], client.port()));
    let repo_dir = fanout::repository_dir();
    let mut created: BTreeSet<String> = BTreeSet::new();
    if !paths.rootfs.join(&repo_dir).exists() {
        created.insert(repo_dir);
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut unique = Vec::new();
    for file in files {
        if seen.insert(file.sha256.as_str()) {
            unique.push(file);
        } else {
            out.present += 1;
        }
    }
    // Once the registry does not answer, the rest is not tried: each try would wait out
    // the connect timeout.
    let unreachable: Mutex<Option<String>> = Mutex::new(None);
    let results = in_parallel(&unique, |_, file| {
        if let Some(why) = lock(&unreachable).clone() {
            return Err(why);
        }
        let size = match plan.manifest.get(&file.path).map(|e| &e.kind) {
            Some(EntryKind::File { size, sha256 })
                if *sha256 == file.sha256 && !file.path.starts_with("registry/") =>
            {
                *size
            }
            _ => return Err("this host's plan does not hold that content".to_string()),
        };
        let existed = fanout::storage_paths(&file.sha256).map(|p| paths.rootfs.join(&p).exists());
        let result = join_rel(&paths.rootfs, &file.path)
            .map_err(|e| e.to_string())
            .and_then(|src| {
                std::fs::File::open(&src).map_err(|e| format!("{}: {e}", src.display()))
            })
            .and_then(|mut f| blobs::push(&client, addr, file, size, &mut f));
        if let Err(e) = &result
            && e.starts_with("nothing answered")
        {
            *lock(&unreachable) = Some(e.clone());
        }
        result.map(|pushed| (pushed, existed))
    });
    for (file, result) in unique.iter().zip(results) {
        match result.unwrap_or_else(|| Err("the pushing thread stopped".into())) {
            Ok((Pushed::Uploaded(n), existed)) => {
                out.pushed += 1;
                out.bytes += n;
                let paths = fanout::storage_paths(&file.sha256);
                for (path, existed) in paths.into_iter().zip(existed) {
                    if !existed {
                        created.insert(path);
                    }
                }
            }
            Ok((Pushed::Present, _)) => out.present += 1,
            Err(e) => out.failed.push(format!("{}: {e}", file.path)),
        }
    }
    if out.pushed > 0 {
        // Recorded for clean: without the record, clean --keep-rootfs would leave them.
        if let Err(e) = journal.update(|r| r.published.extend(created)) {
            out.failed.push(format!("recording the pushed blobs: {e}"));
        }
    }
    out
}

/// A poisoned lock still holds a usable value here (an `Option` of a message).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Fetches `wanted` (paths of files this host lacks) into `staging` from the registry at
/// `sources` (registry host IPs), spreading the files over them and trying the next source
/// when one fails. A source that does not answer is not asked again. Every file goes
/// through a [`Receiver`] expecting just it: asked for, and matching the plan's sha256.
pub(crate) fn fetch(plan: &Plan, staging: &Path, wanted: &[String], sources: &[String]) -> Fetched {
    let mut out = Fetched::default();
    let addrs: Vec<SocketAddr> = sources
        .iter()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, plan.registry.port))
        .collect();
    let client = match Client::new(&plan.registry) {
        Ok(_) if addrs.is_empty() => Err("no registry host to fetch from".to_string()),
        other => other,
    };
    let client = match client {
        Ok(c) => c,
        Err(why) => {
            out.left = wanted.to_vec();
            if let Some(first) = wanted.first() {
                out.reason = Some(format!("{first}: {why}"));
            }
            return out;
        }
    };
    let dead: Mutex<HashSet<SocketAddr>> = Mutex::new(HashSet::new());
    let results = in_parallel(wanted, |i, path| -> Result<u64, String> {
        let (blob, size) = match plan.manifest.get(path).map(|e| &e.kind) {
            Some(EntryKind::File { size, sha256 }) => (
                BlobRef {
                    path: path.clone(),
                    sha256: sha256.clone(),
                },
                *size,
            ),
            _ => return Err("not a regular file of the plan".into()),
        };
        let mut last = "every registry host stopped answering".to_string();
        for k in 0..addrs.len() {
            let addr = addrs[(i + k) % addrs.len()];
            if lock(&dead).contains(&addr) {
                continue;
            }
            let one = std::slice::from_ref(path);
            let mut receiver = Receiver::new(&plan.manifest, one, staging);
            let attempt = blobs::fetch(&client, addr, &blob, size).and_then(|mut body| {
                receiver
                    .accept(path, &mut body)
                    .map_err(|e| format!("from {addr}: {e}"))
            });
            match attempt {
                Ok(()) => return Ok(size),
                Err(e) => {
                    if e.starts_with("nothing answered") {
                        lock(&dead).insert(addr);
                    }
                    last = e;
                }
            }
        }
        Err(last)
    });
    for (path, result) in wanted.iter().zip(results) {
        match result.unwrap_or_else(|| Err("the fetching thread stopped".into())) {
            Ok(size) => {
                out.files += 1;
                out.bytes += size;
            }
            Err(why) => {
                if out.reason.is_none() {
                    out.reason = Some(format!("{path}: {why}"));
                }
                out.left.push(path.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use installer_proto::manifest::{Entry, Manifest};
    use sha2::{Digest, Sha256};
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    fn hex(data: &[u8]) -> String {
        Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A registry stand-in on loopback (plain HTTP) answering blob GETs from `blobs`
    /// (digest → body; absent: 404), for `requests` connections.
    fn serve(blobs: Vec<(String, Vec<u8>)>, requests: usize) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for _ in 0..requests {
                let (sock, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(sock.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut sock = sock;
                let found = blobs.iter().find(|(d, _)| line.contains(d.as_str()));
                match found {
                    Some((_, body)) => {
                        write!(
                            sock,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        )
                        .unwrap();
                        sock.write_all(body).unwrap();
                    }
                    None => sock
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                        .unwrap(),
                }
            }
        });
        port
    }

    /// Every path under `dir`, relative, sorted.
    fn walk(dir: &Path) -> Vec<String> {
        let mut all: Vec<String> = walkdir::WalkDir::new(dir)
            .min_depth(1)
            .into_iter()
            .map(|e| {
                e.unwrap()
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        all.sort();
        all
    }

    #[test]
    fn fetched_files_are_verified_and_what_a_registry_gets_wrong_is_left_for_the_controller() {
        // Sorted, as a manifest is.
        let files: [(&str, &[u8]); 3] = [
            ("bin/forged", b"what the plan says"),
            ("bin/good", b"the real content"),
            ("images/absent.tar", b"never pushed"),
        ];
        let mut plan = crate::steps::test_plan::plan_with(&[]);
        plan.manifest = Manifest {
            entries: files
                .iter()
                .map(|(path, data)| Entry {
                    path: path.to_string(),
                    mode: 0o644,
                    kind: EntryKind::File {
                        size: data.len() as u64,
                        sha256: hex(data),
                    },
                })
                .collect(),
        };
        let forged = b"what a registry sa".to_vec();
        assert_eq!(
            forged.len(),
            files[0].1.len(),
            "same size: only the hash can tell"
        );
        plan.registry.port = serve(
            vec![
                (hex(files[0].1), forged),
                (hex(files[1].1), files[1].1.to_vec()),
            ],
            3,
        );
        let staging = tempfile::tempdir().unwrap();
        let wanted: Vec<String> = files.iter().map(|(p, _)| p.to_string()).collect();
        let fetched = fetch(&plan, staging.path(), &wanted, &["127.0.0.1".to_string()]);

        assert_eq!(
            (fetched.files, fetched.bytes),
            (1, files[1].1.len() as u64),
            "{fetched:?}"
        );
        assert_eq!(fetched.left, ["bin/forged", "images/absent.tar"]);
        let reason = fetched.reason.unwrap();
        assert!(
            reason.starts_with("bin/forged: ") && reason.contains("does not match"),
            "{reason}"
        );
        assert_eq!(
            std::fs::read(staging.path().join("bin/good")).unwrap(),
            files[1].1
        );
        assert!(
            !staging.path().join("bin/forged").exists(),
            "forged content never lands"
        );
        let names: Vec<_> = walk(staging.path());
        assert_eq!(
            names,
            ["bin", "bin/good"],
            "nothing else is left in staging"
        );
    }

    #[test]
    fn with_no_source_answering_everything_is_left_and_said_why() {
        let mut plan = crate::steps::test_plan::plan_with(&["bin/a", "bin/b"]);
        // A port nothing listens on: bound, then released.
        plan.registry.port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let staging = tempfile::tempdir().unwrap();
        let wanted = vec!["bin/a".to_string(), "bin/b".to_string()];
        let fetched = fetch(&plan, staging.path(), &wanted, &["127.0.0.1".to_string()]);
        assert_eq!(fetched.files, 0);
        assert_eq!(fetched.left, wanted);
        assert!(fetched.reason.unwrap().contains("nothing answered"));
        let none = fetch(&plan, staging.path(), &wanted, &[]);
        assert_eq!(
            none.reason.unwrap(),
            "bin/a: no registry host to fetch from"
        );
    }
}
