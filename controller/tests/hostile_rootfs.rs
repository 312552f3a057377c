//! Hostile rootfs trees and archives (issue 9: defects 1, 9 and the names of 10): links
//! that chain out of the tree, archive bombs, names with control characters, and truncated
//! or mutated archives. Each is refused by `installer apply` before any host is contacted —
//! exit 2 with a message naming the link, entry or position — and nothing of a decoy secret
//! outside the tree reaches any output.
//!
//! Every run passes `--sudo-password-env` naming an unset variable: that is checked right
//! after the inputs, so input that wrongly passes validation still stops before any
//! contact (exit 2 with a message that is not the one asserted) instead of waiting on the
//! hosts, which do not exist.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod cli_common;

use assert_cmd::Command;
use cli_common::Run;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DECOY: &[u8] = b"DECOY-SECRET-5e0c9a71-do-not-ship";
const UNSET_VAR: &str = "INSTALLER_TEST_VARIABLE_THAT_IS_NEVER_SET";
/// The address space a run may use (KiB): a debug build needs about 100 MiB.
const MEMORY_KIB: u64 = 200_000;

/// A site: the Clusterfile, the log dir and `$XDG_CACHE_HOME`, all in one tempdir.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        Site {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn cache(&self) -> PathBuf {
        self.path().join("xdg")
    }

    /// The unpacked archives: `$XDG_CACHE_HOME/installer/rootfs`.
    fn unpacked(&self) -> PathBuf {
        self.cache().join("installer/rootfs")
    }

    fn clusterfile(&self, image: &Path) -> PathBuf {
        let path = self.path().join("Clusterfile");
        fs::write(
            &path,
            format!(
                "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata:\n  name: c1\nspec:\n  image: {}\n  hosts:\n    - ips: [192.0.2.10]\n      roles: [master]\n",
                image.display()
            ),
        )
        .unwrap();
        path
    }

    /// `installer apply -f Clusterfile` under a memory limit, with `env` set.
    fn apply(&self, image: &Path, env: &[(&str, &str)]) -> Run {
        let cf = self.clusterfile(image);
        let logs = self.path().join("logs");
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -v {MEMORY_KIB} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_installer"))
            .args(["apply", "-f"])
            .arg(&cf)
            .arg("--log-dir")
            .arg(&logs)
            .arg("--agent-dir")
            .arg(&logs)
            .args(["--sudo-password-env", UNSET_VAR, "--connect-timeout", "1"])
            .env("XDG_CACHE_HOME", self.cache())
            .env_remove("INSTALLER_UNPACK_LIMIT")
            .env_remove(UNSET_VAR);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let run = cli_common::run(Command::from_std(cmd));
        assert!(
            !run.text.as_bytes().windows(DECOY.len()).any(|w| w == DECOY),
            "the decoy secret reached the output: {}",
            run.text
        );
        run
    }

    /// Asserts that no file the run left (logs, cache, hash cache) holds the decoy.
    fn assert_no_decoy_left(&self) {
        for dir in [self.path().join("logs"), self.cache()] {
            for file in files_below(&dir) {
                let bytes = fs::read(&file).unwrap();
                assert!(
                    !bytes.windows(DECOY.len()).any(|w| w == DECOY),
                    "the decoy secret is in {}",
                    file.display()
                );
            }
        }
    }
}

/// Regular files below `dir`, links not followed.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(items) = fs::read_dir(dir) else {
        return out;
    };
    for item in items {
        let item = item.unwrap();
        let ft = item.file_type().unwrap();
        if ft.is_dir() {
            out.extend(files_below(&item.path()));
        } else if ft.is_file() {
            out.push(item.path());
        }
    }
    out
}

fn write(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// `outside/` holding the decoy as an SSH key and as a binary, where the report's chain
/// led: `installer apply` shipped the key and installed the binary.
fn plant_decoy(top: &Path) {
    write(top, "outside/.ssh/id_ed25519", DECOY);
    write(top, "outside/bin/secretfile", DECOY);
}

/// A tar entry with the name, type and link written into the header as given, bypassing
/// the tar crate's own path checks (archives from elsewhere have none).
fn raw_entry(b: &mut Vec<u8>, name: &[u8], kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_old();
    {
        let bytes = h.as_mut_bytes();
        bytes[..name.len()].copy_from_slice(name);
        bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(data);
    b.resize(b.len().div_ceil(512) * 512, 0);
}

fn end_archive(b: &mut Vec<u8>) {
    b.extend_from_slice(&[0u8; 1024]);
}

fn zstd(tar: &[u8]) -> Vec<u8> {
    zstd::encode_all(tar, 1).unwrap()
}

fn gzip(tar: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(tar).unwrap();
    e.finish().unwrap()
}

use tar::EntryType as T;

/// The report's archive: `a/b/c/d/up -> ../../../..` then `amd64 -> a/b/c/d/up/../../../../outside`,
/// each inside by its text. Unpacked at `$XDG_CACHE_HOME/installer/rootfs/<sha>`, four
/// levels below the site, the chain reaches the site's `outside/`.
#[test]
fn an_archive_whose_links_chain_out_is_refused_before_any_host() {
    let site = Site::new();
    plant_decoy(site.path());
    let mut tar = Vec::new();
    raw_entry(&mut tar, b"etc/daemon.json", T::Regular, "", b"{}");
    raw_entry(&mut tar, b"a/b/c/d/up", T::Symlink, "../../../..", b"");
    raw_entry(
        &mut tar,
        b"amd64",
        T::Symlink,
        "a/b/c/d/up/../../../../outside",
        b"",
    );
    end_archive(&mut tar);
    let image = site.path().join("rootfs.tar.zst");
    fs::write(&image, zstd(&tar)).unwrap();

    let run = site.apply(&image, &[]);
    assert_eq!(run.code, 2, "{}", run.text);
    assert!(
        run.text.contains(&format!(
            "{}: entry \"amd64\": symlink \"amd64\" -> \"a/b/c/d/up/../../../../outside\" leads outside the rootfs (to \"{}\", via \"a/b/c/d/up\" -> \"../../../..\")",
            image.display(),
            // Seen from the temporary unpack directory beside the final one.
            site.path().join("outside").display()
        )),
        "{}",
        run.text
    );
    assert!(run.took < Duration::from_secs(10));
    assert!(
        fs::read_dir(site.unpacked()).unwrap().next().is_none(),
        "an unpacked tree was kept"
    );
    site.assert_no_decoy_left();
}

/// The same chain in a directory rootfs: as the arch subtree the controller reads (it read
/// and shipped `outside/`), and inside the tree as a link the host would get (it resolved
/// to the host's `/etc/shadow` from `<dataRoot>/<cluster>/rootfs`).
#[test]
fn a_directory_rootfs_whose_links_chain_out_is_refused_before_any_host() {
    use std::os::unix::fs::symlink;
    let site = Site::new();
    plant_decoy(site.path());
    let image = site.path().join("rootfs");
    write(&image, "etc/daemon.json", b"{}");
    fs::create_dir_all(image.join("a/b/c/d")).unwrap();
    symlink("../../../..", image.join("a/b/c/d/up")).unwrap();
    symlink("a/b/c/d/up/../outside", image.join("amd64")).unwrap();

    let run = site.apply(&image, &[]);
    assert_eq!(run.code, 2, "{}", run.text);
    assert!(
        run.text.contains(&format!(
            "symlink \"amd64\" -> \"a/b/c/d/up/../outside\" leads outside the rootfs (to \"{}\", via \"a/b/c/d/up\" -> \"../../../..\"); every link must resolve to a path inside the rootfs (file {})",
            site.path().join("outside").display(),
            image.join("amd64").display()
        )),
        "{}",
        run.text
    );
    site.assert_no_decoy_left();

    fs::remove_file(image.join("amd64")).unwrap();
    symlink(
        "../a/b/c/d/up/../../../../etc/shadow",
        image.join("etc/shadow"),
    )
    .unwrap();
    let run = site.apply(&image, &[]);
    assert_eq!(run.code, 2, "{}", run.text);
    assert!(
        run.text.contains(
            "symlink \"etc/shadow\" -> \"../a/b/c/d/up/../../../../etc/shadow\" leads outside the rootfs (to \"<rootfs>/../../../../etc/shadow\", via \"a/b/c/d/up\" -> \"../../../..\")"
        ),
        "{}",
        run.text
    );
}

#[test]
fn names_with_control_characters_are_refused_before_any_host() {
    let site = Site::new();
    let image = site.path().join("rootfs");
    write(&image, "bin/evil\nname", b"#!/bin/sh\n");
    let run = site.apply(&image, &[]);
    assert_eq!(run.code, 2, "{}", run.text);
    assert!(
        run.text
            .contains(r#""bin/evil\nname": contains the control character U+000A; rename it"#),
        "{}",
        run.text
    );
    assert!(!run.text.contains("evil\nname"), "{}", run.text);

    let mut tar = Vec::new();
    raw_entry(&mut tar, b"etc/a\x1b[2Jb", T::Regular, "", b"x");
    end_archive(&mut tar);
    let archive = site.path().join("r.tar");
    fs::write(&archive, &tar).unwrap();
    let run = site.apply(&archive, &[]);
    assert_eq!(run.code, 2, "{}", run.text);
    assert!(
        run.text.contains(r#"entry "etc/a\u{1b}[2Jb": "#) && run.text.contains("U+001B"),
        "{}",
        run.text
    );
    assert!(!run.text.contains('\u{1b}'), "{}", run.text);
}

/// A .tar.zst of under 1 KiB that unpacks to 8 MiB, against a limit of 1 MiB from the
/// environment.
#[test]
fn an_archive_bomb_stops_at_the_limit_and_leaves_nothing() {
    let site = Site::new();
    let mut tar = Vec::new();
    raw_entry(&mut tar, b"etc/a", T::Regular, "", &[b'a'; 600 << 10]);
    raw_entry(
        &mut tar,
        b"images/zeros",
        T::Regular,
        "",
        &vec![0u8; 8 << 20],
    );
    end_archive(&mut tar);
    let image = site.path().join("bomb.tar.zst");
    let zst = zstd(&tar);
    assert!(zst.len() < 1024, "{}", zst.len());
    fs::write(&image, zst).unwrap();

    let run = site.apply(&image, &[("INSTALLER_UNPACK_LIMIT", "1M")]);
    assert_eq!(run.code, 2, "{}", run.text);
    assert!(
        run.text.contains(&format!(
            "{}: entry \"images/zeros\": unpacking stopped, this entry's 8.0 MiB would pass the limit: 600.0 KiB (614400 bytes) unpacked so far, ",
            image.display()
        )) && run.text.contains(&format!(
            " free at {} (keeping 512.0 MiB free), limit 1.0 MiB (1048576 bytes); ",
            site.unpacked().display()
        )),
        "{}",
        run.text
    );
    assert!(
        fs::read_dir(site.unpacked()).unwrap().next().is_none(),
        "a partial unpack was left"
    );

    let run = site.apply(&image, &[("INSTALLER_UNPACK_LIMIT", "lots")]);
    assert_eq!(run.code, 2, "{}", run.text);
    assert!(
        run.text
            .contains("INSTALLER_UNPACK_LIMIT=\"lots\": not a size"),
        "{}",
        run.text
    );
}

/// A GNU long name claiming 256 MiB of zeros (a .tar.zst of a few KiB): the tar reader
/// holds such a name in memory, and the run is limited to less than that.
#[test]
fn a_long_name_bomb_is_refused_in_bounded_memory() {
    let site = Site::new();
    let claimed: u64 = 256 << 20;
    let mut h = tar::Header::new_gnu();
    h.as_mut_bytes()[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(T::GNULongName);
    h.set_size(claimed);
    h.set_mode(0o644);
    h.set_cksum();
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
    enc.write_all(h.as_bytes()).unwrap();
    io::copy(&mut io::repeat(b'x').take(claimed), &mut enc).unwrap();
    let image = site.path().join("names.tar.zst");
    fs::write(&image, enc.finish().unwrap()).unwrap();

    let run = site.apply(&image, &[]);
    assert_eq!(run.code, 2, "{}", run.text);
    assert!(
        run.text.contains(&format!(
            "{}: more than 1.0 MiB of tar headers, long names or PAX records before one entry",
            image.display()
        )) && run.text.contains("(at byte 1048576 of the tar stream)"),
        "{}",
        run.text
    );
}

/// xorshift64*: deterministic, so a failing case can be replayed by its number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A small rootfs archive using every kind of entry and header a real one has: directories,
/// files, a symlink, a hard link, a GNU long name and a PAX path.
fn base_tar() -> Vec<u8> {
    fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: T, data: &[u8], link: Option<&str>) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == T::Directory { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        match link {
            Some(target) => b.append_link(&mut h, path, target).unwrap(),
            None => b.append_data(&mut h, path, data).unwrap(),
        }
    }
    let mut b = tar::Builder::new(Vec::new());
    add(&mut b, "etc", T::Directory, b"", None);
    add(
        &mut b,
        "etc/daemon.json",
        T::Regular,
        b"{\"log-driver\": \"json-file\"}\n",
        None,
    );
    add(&mut b, "bin/kubectl", T::Regular, &[0x7f; 3000], None);
    add(&mut b, "etc/link", T::Symlink, b"", Some("daemon.json"));
    add(&mut b, "etc/hard", T::Link, b"", Some("etc/daemon.json"));
    let long = format!("manifests/{}/deploy.yaml", "x".repeat(150));
    add(&mut b, &long, T::Regular, b"kind: Deployment\n", None);
    b.append_pax_extensions([("path", &b"scripts/pax-named.sh"[..])])
        .unwrap();
    add(
        &mut b,
        "scripts/placeholder",
        T::Regular,
        b"#!/bin/sh\n",
        None,
    );
    b.into_inner().unwrap()
}

/// Offsets of the header blocks of a well-formed tar.
fn header_offsets(tar: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 512 <= tar.len() && tar[off..off + 512].iter().any(|b| *b != 0) {
        out.push(off);
        let h = tar::Header::from_byte_slice(&tar[off..off + 512]);
        let size = h.entry_size().unwrap() as usize;
        off += 512 + size.div_ceil(512) * 512;
    }
    out
}

/// One mutated archive (a tar, or compressed bytes when `!is_tar`): truncated, bytes flipped, or a header field
/// rewritten with its checksum fixed (so the reader gets past the checksum to the field).
fn mutate(base: &[u8], rng: &mut Rng, is_tar: bool) -> Vec<u8> {
    let mut tar = base.to_vec();
    match rng.below(if is_tar { 3 } else { 2 }) {
        0 => tar.truncate(rng.below(tar.len())),
        1 => {
            for _ in 0..=rng.below(8) {
                let i = rng.below(tar.len());
                tar[i] ^= 1 << rng.below(8);
            }
        }
        _ => {
            let headers = header_offsets(base);
            let at = headers[rng.below(headers.len())];
            let h = &mut tar[at..at + 512];
            match rng.below(5) {
                // The size: huge octal, huge base-256, zero, or noise.
                0 => h[124..136].copy_from_slice(b"77777777777\0"),
                1 => {
                    h[124] = 0x80;
                    for b in &mut h[125..136] {
                        *b = 0xff;
                    }
                }
                2 => h[124..136].copy_from_slice(b"00000000000\0"),
                // The type.
                3 => h[156] = b"0125678LKxgS\0"[rng.below(13)],
                // The name or link name.
                _ => {
                    let field = if rng.below(2) == 0 { 0..100 } else { 157..257 };
                    for b in &mut h[field] {
                        *b = (rng.next() & 0xff) as u8;
                    }
                }
            }
            let sum: u32 = h[..148]
                .iter()
                .chain(&h[156..])
                .map(|b| u32::from(*b))
                .sum::<u32>()
                + 8 * 32;
            h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        }
    }
    tar
}

/// The fuzz cases: `(name, bytes)` of mutated archives of each compression. A case's
/// compressed forms are mutated after compressing (the decompressor meets the damage) or
/// before (the tar reader does).
fn fuzz_cases(count: usize) -> Vec<(String, Vec<u8>)> {
    let base = base_tar();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|i| {
            let (ext, bytes) = match i % 5 {
                0 | 1 => ("tar", mutate(&base, &mut rng, true)),
                2 => ("tar.gz", mutate(&gzip(&base), &mut rng, false)),
                3 => ("tar.zst", mutate(&zstd(&base), &mut rng, false)),
                _ => ("tar.zst", zstd(&mutate(&base, &mut rng, true))),
            };
            (format!("case{i:03}.{ext}"), bytes)
        })
        .collect()
}

fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// 300 truncated and mutated archives through the unpack, each on a thread with a time
/// limit: none panics or hangs, memory stays bounded, and each either unpacks or fails
/// naming the archive with a position or an entry.
#[test]
fn mutated_and_truncated_archives_fail_cleanly() {
    let started = Instant::now();
    let site = tempfile::tempdir().unwrap();
    let mut failed = 0;
    for (name, bytes) in fuzz_cases(300) {
        let archive = site.path().join(&name);
        fs::write(&archive, &bytes).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = site.path().to_path_buf();
        let case = name.clone();
        std::thread::spawn(move || {
            let cache = tempfile::tempdir().unwrap();
            let result = installer::rootfs::resolve(&case, &dir, cache.path())
                .map(|r| r.dir().to_path_buf())
                .map_err(|e| e.to_string());
            let _ = tx.send(result);
        });
        let result = match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(r) => r,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{name}: no answer in 5 s"),
            Err(_) => panic!("{name}: the unpack panicked"),
        };
        if let Err(msg) = result {
            failed += 1;
            assert!(
                msg.starts_with(&format!("{}: ", archive.display()))
                    && (msg.contains(" of the tar stream") || msg.contains(": entry \"")),
                "{name}: not a clear error: {msg}"
            );
            assert!(!msg.chars().any(char::is_control), "{name}: {msg}");
        }
        fs::remove_file(&archive).unwrap();
    }
    assert!(failed > 150, "only {failed} of 300 mutated archives failed");
    assert!(
        peak_rss_kib() < 512 * 1024,
        "peak memory {} KiB",
        peak_rss_kib()
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// A sample of the same cases through `installer apply` under a memory limit: always exit
/// 2 before any contact, never a crash.
#[test]
fn mutated_archives_make_apply_exit_2() {
    let site = Site::new();
    for (name, bytes) in fuzz_cases(300).into_iter().step_by(12) {
        let archive = site.path().join(&name);
        fs::write(&archive, &bytes).unwrap();
        let run = site.apply(&archive, &[]);
        assert_eq!(run.code, 2, "{name}: {}", run.text);
        // Refused with the archive, and a position in it or the entry at fault; or, if the
        // mutation left a valid rootfs, stopped by the unset variable after validation.
        let refused = run.text.contains(&format!("{}: ", archive.display()))
            && (run.text.contains(" of the tar stream") || run.text.contains(": entry \""));
        assert!(
            refused || run.text.contains(UNSET_VAR),
            "{name}: {}",
            run.text
        );
        assert!(
            !run.text.chars().any(|c| c.is_control() && c != '\n'),
            "{name}: {}",
            run.text
        );
        assert!(!run.text.contains("panicked"), "{name}: {}", run.text);
        fs::remove_file(&archive).unwrap();
    }
}
