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

/// Pushes `files` from this host's rootfs copy into the registry it runs (at loopback, the
/// server name being the registry domain). A file this host's plan does not hold with the
/// same content, or that lies in the registry's own storage, is not pushed.
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
    let mut done: HashSet<&str> = HashSet::new();
    let mut unreachable: Option<String> = None;
    for file in files {
        if let Some(why) = &unreachable {
            out.failed.push(format!("{}: {why}", file.path));
            continue;
        }
        if !done.insert(file.sha256.as_str()) {
            out.present += 1;
            continue;
        }
        let size = match plan.manifest.get(&file.path).map(|e| &e.kind) {
            Some(EntryKind::File { size, sha256 })
                if *sha256 == file.sha256 && !file.path.starts_with("registry/") =>
            {
                *size
            }
            _ => {
                out.failed.push(format!(
                    "{}: this host's plan does not hold that content",
                    file.path
                ));
                continue;
            }
        };
        let existed = fanout::storage_paths(&file.sha256).map(|p| paths.rootfs.join(&p).exists());
        let result = join_rel(&paths.rootfs, &file.path)
            .map_err(|e| e.to_string())
            .and_then(|src| {
                std::fs::File::open(&src).map_err(|e| format!("{}: {e}", src.display()))
            })
            .and_then(|mut f| blobs::push(&client, addr, file, size, &mut f));
        match result {
            Ok(Pushed::Uploaded(n)) => {
                out.pushed += 1;
                out.bytes += n;
                for (path, existed) in fanout::storage_paths(&file.sha256).into_iter().zip(existed)
                {
                    if !existed {
                        created.insert(path);
                    }
                }
            }
            Ok(Pushed::Present) => out.present += 1,
            Err(e) => {
                if e.starts_with("nothing answered") {
                    unreachable = Some(e.clone());
                }
                out.failed.push(format!("{}: {e}", file.path));
            }
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

/// Fetches the files `receiver` still expects (`wanted`, in that order) from the registry at
/// `sources` (registry host IPs), spreading the files over them and trying the next source
/// when one fails. A source that does not answer is not asked again.
pub(crate) fn fetch(
    plan: &Plan,
    receiver: &mut Receiver<'_>,
    wanted: &[String],
    sources: &[String],
) -> Fetched {
    let mut out = Fetched::default();
    let client = Client::new(&plan.registry);
    let addrs: Vec<SocketAddr> = sources
        .iter()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, plan.registry.port))
        .collect();
    let first_problem = match (&client, addrs.is_empty()) {
        (Err(e), _) => Some(e.clone()),
        (_, true) => Some("no registry host to fetch from".to_string()),
        _ => None,
    };
    let mut dead: HashSet<SocketAddr> = HashSet::new();
    for (i, path) in wanted.iter().enumerate() {
        let mut last = first_problem.clone();
        let blob = match plan.manifest.get(path).map(|e| &e.kind) {
            Some(EntryKind::File { size, sha256 }) => Some((
                BlobRef {
                    path: path.clone(),
                    sha256: sha256.clone(),
                },
                *size,
            )),
            _ => {
                last = Some("not a regular file of the plan".into());
                None
            }
        };
        let mut got = false;
        if let (Ok(client), Some((blob, size)), None) = (&client, &blob, &first_problem) {
            for k in 0..addrs.len() {
                let addr = addrs[(i + k) % addrs.len()];
                if dead.contains(&addr) {
                    continue;
                }
                let attempt = blobs::fetch(client, addr, blob, *size).and_then(|mut body| {
                    receiver
                        .accept(path, &mut body)
                        .map_err(|e| format!("from {addr}: {e}"))
                });
                match attempt {
                    Ok(()) => {
                        got = true;
                        out.files += 1;
                        out.bytes += size;
                        break;
                    }
                    Err(e) => {
                        if e.starts_with("nothing answered") {
                            dead.insert(addr);
                        }
                        last = Some(e);
                    }
                }
            }
        }
        if !got {
            if out.reason.is_none() {
                let why = last.unwrap_or_else(|| "every registry host stopped answering".into());
                out.reason = Some(format!("{path}: {why}"));
            }
            out.left.push(path.clone());
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
        let mut receiver = Receiver::new(&plan.manifest, &wanted, staging.path());
        let fetched = fetch(&plan, &mut receiver, &wanted, &["127.0.0.1".to_string()]);

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
        let err = receiver.finish().unwrap_err().to_string();
        assert!(err.contains("2 requested file(s) did not arrive"), "{err}");
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
        let mut receiver = Receiver::new(&plan.manifest, &wanted, staging.path());
        let fetched = fetch(&plan, &mut receiver, &wanted, &["127.0.0.1".to_string()]);
        assert_eq!(fetched.files, 0);
        assert_eq!(fetched.left, wanted);
        assert!(fetched.reason.unwrap().contains("nothing answered"));
        let none = fetch(&plan, &mut receiver, &wanted, &[]);
        assert_eq!(
            none.reason.unwrap(),
            "bin/a: no registry host to fetch from"
        );
    }
}
