use super::*;
use crate::clusterfile;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;

fn write(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn read(tree: &MergedTree, rel: &str) -> String {
    fs::read_to_string(tree.source(rel).unwrap()).unwrap()
}

/// A tar entry with the name, type and link written into the header as given, bypassing
/// the tar crate's own path checks (which is the point: archives from elsewhere have none).
fn raw_entry(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
) {
    let mut h = tar::Header::new_old();
    {
        let bytes = h.as_mut_bytes();
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    // Directories need their x bit, or a controller run by a person cannot enter them.
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tar_of(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        raw_entry(&mut b, name, *kind, link, data);
    }
    b.into_inner().unwrap()
}

fn compress(tar: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(tar).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(tar, 1).unwrap(),
    }
}

use tar::EntryType as T;

#[test]
fn directory_image_relative_to_the_clusterfile() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    write(site.path(), "rootfs/etc/a.conf", b"a");
    let r = resolve("rootfs", site.path(), cache.path()).unwrap();
    assert_eq!(
        r.dir(),
        fs::canonicalize(site.path().join("rootfs")).unwrap()
    );
    assert!(r.archive().is_none());
    assert_eq!(r.arches(), ["amd64"]);

    let err = resolve("nope", site.path(), cache.path())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "spec.image \"nope\": {}/nope does not exist; give a rootfs directory or a .tar, .tar.gz or .tar.zst of one, or a ClusterImage as an OCI image layout directory or an OCI or docker archive (relative paths are relative to the Clusterfile's directory)",
            site.path().display()
        )
    );
    write(site.path(), "image.zip", b"PK");
    let err = resolve("image.zip", site.path(), cache.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("is neither a directory nor a .tar, .tar.gz or .tar.zst file"),
        "{err}"
    );
}

#[test]
fn archives_unpack_once_into_the_cache() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        ("./", T::Directory, "", b""),
        ("./bin/", T::Directory, "", b""),
        ("./bin/tool", T::Regular, "", b"#!/bin/sh\necho hi\n"),
        ("./etc/conf", T::Regular, "", b"x=1\n"),
        ("./etc/link", T::Symlink, "conf", b""),
        ("./etc/hard", T::Link, "./etc/conf", b""),
    ]);
    for (name, c) in [
        ("r.tar", Compression::None),
        ("r.tar.gz", Compression::Gzip),
        ("r.tar.zst", Compression::Zstd),
    ] {
        fs::write(site.path().join(name), compress(&tar, c)).unwrap();
        let r = resolve(name, site.path(), cache.path()).unwrap();
        assert_eq!(
            r.archive(),
            Some(fs::canonicalize(site.path().join(name)).unwrap().as_path())
        );
        let dir = r.dir().to_path_buf();
        assert!(
            dir.starts_with(cache.path().join("rootfs")),
            "{}",
            dir.display()
        );
        assert_eq!(fs::read_to_string(dir.join("etc/hard")).unwrap(), "x=1\n");
        assert_eq!(
            fs::read_link(dir.join("etc/link")).unwrap(),
            Path::new("conf")
        );
        assert_eq!(
            fs::metadata(dir.join("bin/tool"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o644
        );
        // Resolved again: the unpacked tree is reused, not unpacked anew.
        write(&dir, "marker", b"");
        let again = resolve(name, site.path(), cache.path()).unwrap();
        assert_eq!(again.dir(), dir);
        assert!(again.dir().join("marker").exists());
        fs::remove_file(dir.join("marker")).unwrap();
    }
    // Same content (the tar), different compression: different archive hashes.
    let unpacked = fs::read_dir(cache.path().join("rootfs")).unwrap().count();
    assert_eq!(unpacked, 3);

    // A tree no run used for weeks goes when another archive is resolved; the others stay.
    let stale = cache.path().join("rootfs/0123stale");
    fs::create_dir_all(stale.join("etc")).unwrap();
    let weeks_ago = std::time::SystemTime::now() - super::prune::UNUSED_FOR * 2;
    fs::File::open(&stale)
        .unwrap()
        .set_modified(weeks_ago)
        .unwrap();
    resolve("r.tar", site.path(), cache.path()).unwrap();
    assert!(!stale.exists(), "a stale unpacked tree was kept");
    assert_eq!(
        fs::read_dir(cache.path().join("rootfs")).unwrap().count(),
        3
    );
}

#[test]
fn an_archive_of_one_named_directory_resolves_to_it() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let tar = tar_of(&[
        ("myrootfs/", T::Directory, "", b""),
        ("myrootfs/etc/a", T::Regular, "", b"a"),
    ]);
    fs::write(site.path().join("r.tar"), tar).unwrap();
    let r = resolve("r.tar", site.path(), cache.path()).unwrap();
    assert!(r.dir().ends_with("myrootfs"));
    let tree = r.merged("amd64", &[]).unwrap();
    assert_eq!(read(&tree, "etc/a"), "a");
}

#[test]
fn unsafe_archives_are_refused_and_leave_nothing_behind() {
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            tar_of(&[("../evil", T::Regular, "", b"x")]),
            "../evil",
            "`.` or `..` component",
        ),
        (
            tar_of(&[("/etc/evil", T::Regular, "", b"x")]),
            "/etc/evil",
            "absolute path",
        ),
        (
            tar_of(&[("etc/l", T::Symlink, "/etc/passwd", b"")]),
            "etc/l",
            "symlink \"etc/l\" -> \"/etc/passwd\" leads outside the rootfs (to \"/etc/passwd\")",
        ),
        (
            tar_of(&[("etc/l", T::Symlink, "../../x", b"")]),
            "etc/l",
            "symlink \"etc/l\" -> \"../../x\" leads outside the rootfs",
        ),
        // The chain of the report: each link is inside by its text.
        (
            tar_of(&[
                ("a/b/c/d/up", T::Symlink, "../../../..", b""),
                ("amd64", T::Symlink, "a/b/c/d/up/../../../../outside", b""),
            ]),
            "amd64",
            "symlink \"amd64\" -> \"a/b/c/d/up/../../../../outside\" leads outside the rootfs",
        ),
        // A link that is fine when unpacked and escapes through a link unpacked after it.
        (
            tar_of(&[
                ("etc/x", T::Symlink, "../d/up/../..", b""),
                ("d/up", T::Symlink, "..", b""),
            ]),
            "etc/x",
            "via \"d/up\" -> \"..\"",
        ),
        (
            tar_of(&[("a", T::Symlink, "b", b""), ("b", T::Symlink, "a", b"")]),
            "a",
            "more than 40 links followed",
        ),
        (
            tar_of(&[("bin/evil\nname", T::Regular, "", b"x")]),
            "bin/evil\nname",
            "contains the control character U+000A",
        ),
        (
            tar_of(&[("etc/l", T::Symlink, "x\u{1b}[2J", b"")]),
            "etc/l",
            "the target contains the control character U+001B",
        ),
        (
            tar_of(&[
                ("d/l", T::Symlink, "..", b""),
                ("d/l/l2", T::Symlink, "..", b""),
            ]),
            "d/l/l2",
            "it lies below a symlink of the archive",
        ),
        (
            tar_of(&[
                ("etc", T::Symlink, "sub", b""),
                ("sub/", T::Directory, "", b""),
                ("etc/x", T::Regular, "", b"x"),
            ]),
            "etc/x",
            "it lies below a symlink of the archive",
        ),
        (
            tar_of(&[("h", T::Link, "../outside", b"")]),
            "h",
            "hard link target \"../outside\" leaves the rootfs",
        ),
        (
            tar_of(&[("h", T::Link, "missing", b"")]),
            "h",
            "hard link target \"missing\" is not a regular file unpacked before it",
        ),
        (
            tar_of(&[("dev/null", T::Char, "", b"")]),
            "dev/null",
            "a device node cannot be part of a rootfs",
        ),
        (
            tar_of(&[("p", T::Fifo, "", b"")]),
            "p",
            "a fifo cannot be part of a rootfs",
        ),
    ];
    for (tar, entry, reason) in cases {
        let site = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        fs::write(site.path().join("bad.tar"), tar).unwrap();
        let err = resolve("bad.tar", site.path(), cache.path())
            .unwrap_err()
            .to_string();
        let archive = site.path().join("bad.tar");
        let want = format!("{}: entry {entry:?}: ", archive.display());
        assert!(
            err.starts_with(&want) && err.contains(reason),
            "{err}\nwant {want}…{reason}"
        );
        assert!(!err.contains('\n') && !err.contains('\u{1b}'), "{err}");
        assert!(!site.path().join("evil").exists() && !Path::new("/etc/evil").exists());
        let left: Vec<_> = fs::read_dir(cache.path().join("rootfs")).unwrap().collect();
        assert!(
            left.is_empty(),
            "temporary unpack dir left behind: {left:?}"
        );
    }
}

#[test]
fn a_name_that_is_not_utf8_is_refused_escaped() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_old();
    h.as_mut_bytes()[..7].copy_from_slice(b"etc/a\xffb");
    h.set_entry_type(T::Regular);
    h.set_mode(0o644);
    h.set_size(1);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    fs::write(site.path().join("r.tar"), b.into_inner().unwrap()).unwrap();
    let err = resolve("r.tar", site.path(), cache.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(r#"entry "etc/a\xFFb": the name is not valid UTF-8"#),
        "{err}"
    );
}

/// Decoy secret beside the cache, the report's link chain pointing at it: the unpack
/// refuses, and nothing of the decoy is in the error or left in the cache.
#[test]
fn an_archive_link_chain_to_a_decoy_secret_is_refused() {
    let site = tempfile::tempdir().unwrap();
    let top = tempfile::tempdir().unwrap();
    let cache = top.path().join("cache");
    write(top.path(), "outside/.ssh/id_ed25519", b"DECOY-8c1f-SECRET");
    // The tree lands in cache/rootfs/<sha>, three levels below `top`: past `up` (the
    // tree's top), `../../..` is `top`.
    let tar = tar_of(&[
        ("a/b/c/d/up", T::Symlink, "../../../..", b""),
        ("amd64", T::Symlink, "a/b/c/d/up/../../../outside", b""),
        ("etc/x", T::Regular, "", b"x"),
    ]);
    fs::write(site.path().join("r.tar"), &tar).unwrap();
    let err = resolve("r.tar", site.path(), &cache)
        .unwrap_err()
        .to_string();
    assert!(err.contains(r#"entry "amd64": symlink "amd64""#), "{err}");
    assert!(!err.contains("DECOY"), "{err}");
    let left: Vec<_> = fs::read_dir(cache.join("rootfs")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

fn zeros_tar(files: &[(&str, usize)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, len) in files {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(T::Regular);
        h.set_mode(0o644);
        h.set_size(*len as u64);
        h.set_cksum();
        b.append(&h, io::repeat(0).take(*len as u64)).unwrap();
    }
    b.into_inner().unwrap()
}

use std::io::Read as _;

/// A .tar.zst of a few hundred bytes that unpacks to 24 MiB, against a 16 MiB limit: it
/// stops with the numbers and leaves nothing.
#[test]
fn an_archive_bomb_stops_at_the_limit_with_the_numbers() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let tar = zeros_tar(&[("a", 12 << 20), ("b", 12 << 20)]);
    let zst = compress(&tar, Compression::Zstd);
    assert!(zst.len() < 4096, "{}", zst.len());
    fs::write(site.path().join("bomb.tar.zst"), &zst).unwrap();
    let limits = UnpackLimits {
        max_bytes: 16 << 20,
        ..UnpackLimits::default()
    };
    let err = resolve_with("bomb.tar.zst", site.path(), cache.path(), &limits)
        .unwrap_err()
        .to_string();
    let want = format!(
        "{}: entry \"b\": unpacking stopped, this entry's 12.0 MiB would pass the limit: 12.0 MiB (12582912 bytes) unpacked so far, ",
        site.path().join("bomb.tar.zst").display()
    );
    assert!(err.starts_with(&want), "{err}\nwant {want}");
    assert!(
        err.contains(&format!(
            " free at {} (keeping 512.0 MiB free), limit 16.0 MiB (16777216 bytes); ",
            cache.path().join("rootfs").display()
        )),
        "{err}"
    );
    assert!(err.contains("INSTALLER_UNPACK_LIMIT=SIZE"), "{err}");
    let left: Vec<_> = fs::read_dir(cache.path().join("rootfs")).unwrap().collect();
    assert!(left.is_empty(), "partial unpack left behind: {left:?}");
}

/// The free-space bound, made to bite on any disk by asking to keep more free than there is.
#[test]
fn an_unpack_that_would_fill_the_disk_stops_with_the_free_space() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    fs::write(
        site.path().join("r.tar.gz"),
        compress(&zeros_tar(&[("etc/a", 1000)]), Compression::Gzip),
    )
    .unwrap();
    let limits = UnpackLimits {
        keep_free: u64::MAX / 2,
        ..UnpackLimits::default()
    };
    let err = resolve_with("r.tar.gz", site.path(), cache.path(), &limits)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "entry \"etc/a\": unpacking stopped, this entry's 1000 B would leave less than"
        ),
        "{err}"
    );
    assert!(
        err.contains("0 B unpacked so far") && err.contains(" free at "),
        "{err}"
    );
    assert!(
        fs::read_dir(cache.path().join("rootfs"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn the_number_of_entries_is_bounded() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    let files: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 0)).collect();
    fs::write(site.path().join("r.tar"), zeros_tar(&files)).unwrap();
    let limits = UnpackLimits {
        max_entries: 10,
        ..UnpackLimits::default()
    };
    let err = resolve_with("r.tar", site.path(), cache.path(), &limits)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("entry \"f10\": unpacking stopped, the archive has more than 10 entries"),
        "{err}"
    );
}

/// A GNU long name claiming 64 MiB (zeros, so the .tar.zst stays tiny): the tar reader
/// would hold it all in memory; the unpack stops after 1 MiB of headers instead.
#[test]
fn an_oversized_long_name_header_is_refused_without_reading_it() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut tar = Vec::new();
    let mut h = tar::Header::new_gnu();
    h.as_mut_bytes()[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(T::GNULongName);
    h.set_size(64 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    tar.extend_from_slice(h.as_bytes());
    tar.resize(tar.len() + (64 << 20), 0);
    fs::write(
        site.path().join("r.tar.zst"),
        compress(&tar, Compression::Zstd),
    )
    .unwrap();
    let err = resolve("r.tar.zst", site.path(), cache.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "more than 1.0 MiB of tar headers, long names or PAX records before one entry"
        ) && err.contains("(at byte 1048576 of the tar stream)"),
        "{err}"
    );
}

#[test]
fn an_empty_archive_is_an_error() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    fs::write(site.path().join("r.tar"), b"").unwrap();
    let err = resolve("r.tar", site.path(), cache.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the archive holds no files or directories (at byte 0 of the tar stream)"),
        "{err}"
    );
}

#[test]
fn the_unpack_limit_comes_from_the_environment_when_set() {
    // Not set in the test environment: the defaults.
    if std::env::var_os(LIMIT_ENV).is_none() {
        assert_eq!(UnpackLimits::from_env().unwrap(), UnpackLimits::default());
    }
}

#[test]
fn truncated_archive_is_an_error_naming_it() {
    let site = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let gz = compress(
        &tar_of(&[("etc/a", T::Regular, "", &[7u8; 4096])]),
        Compression::Gzip,
    );
    fs::write(site.path().join("r.tar.gz"), &gz[..gz.len() / 2]).unwrap();
    let err = resolve("r.tar.gz", site.path(), cache.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("{}: ", site.path().join("r.tar.gz").display()))
            && err.contains(" of the tar stream"),
        "{err}"
    );
}

/// A directory rootfs whose arch subtree is the report's link chain to a decoy: resolving
/// and merging refuse it before anything is read from the decoy.
#[test]
fn a_directory_rootfs_link_chain_to_a_decoy_secret_is_refused() {
    use std::os::unix::fs::symlink;
    let top = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    write(top.path(), "outside/bin/secretfile", b"DECOY-2b7e-SECRET");
    let img = top.path().join("img");
    write(&img, "etc/a", b"a");
    fs::create_dir_all(img.join("a/b/c/d")).unwrap();
    symlink("../../../..", img.join("a/b/c/d/up")).unwrap();
    symlink("a/b/c/d/up/../outside", img.join("amd64")).unwrap();
    let r = resolve(img.to_str().unwrap(), Path::new("/"), cache.path()).unwrap();
    assert_eq!(r.arches(), ["amd64"]);
    let err = check_templates(&r, &[]).unwrap_err().to_string();
    assert!(
        err.starts_with(r#"symlink "amd64" -> "a/b/c/d/up/../outside" leads outside the rootfs"#),
        "{err}"
    );
    let err = r.merged("amd64", &[]).unwrap_err().to_string();
    assert!(
        err.contains("leads outside the rootfs") && !err.contains("DECOY"),
        "{err}"
    );
}

fn image_with_arches(root: &Path) {
    write(root, "etc/daemon.json", b"{}");
    write(
        root,
        "etc/kubeadm.yml",
        b"kind: ClusterConfiguration\nnetworking:\n  serviceSubnet: 10.96.0.0/12\n",
    );
    write(root, "scripts/init.sh", b"#!/bin/sh\n");
    fs::set_permissions(
        root.join("scripts/init.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    write(root, "amd64/bin/kubelet", b"amd64");
    write(root, "arm64/bin/kubelet", b"arm64");
}

fn clusterfile_with(configs: &str) -> clusterfile::Clusterfile {
    let text = format!(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {{name: c}}\nspec:\n  image: r\n  hosts: [{{ips: [10.0.0.1], roles: [master]}}]\n{configs}"
    );
    clusterfile::parse_with_env("Clusterfile", &text, &|_| None).unwrap()
}

#[test]
fn per_arch_merge_with_overlays_and_cached_hashes() {
    let img = tempfile::tempdir().unwrap();
    let ov = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    image_with_arches(img.path());
    write(ov.path(), "scripts/preHook.sh", b"echo pre\n");
    let r = resolve(img.path().to_str().unwrap(), Path::new("/"), cache.path()).unwrap();
    assert_eq!(r.arches(), ["amd64", "arm64"]);
    let layers = vec![ov.path().to_path_buf()];
    let amd = r.merged("amd64", &layers).unwrap();
    let arm = r.merged("arm64", &layers).unwrap();
    assert_eq!(read(&amd, "bin/kubelet"), "amd64");
    assert_eq!(read(&arm, "bin/kubelet"), "arm64");
    assert_eq!(read(&arm, "scripts/preHook.sh"), "echo pre\n");
    assert!(amd.get("amd64/bin/kubelet").is_none());
    assert_eq!(
        amd.manifest()
            .unwrap()
            .get("etc/daemon.json")
            .unwrap()
            .sha256(),
        Some(installer_proto::manifest::sha256_bytes(b"{}").as_str())
    );
    let missing = img.path().join("no-such-overlay");
    let err = r
        .merged("amd64", std::slice::from_ref(&missing))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("--overlay {}: not a directory", missing.display())),
        "{err}"
    );
}

#[test]
fn config_documents_become_a_layer() {
    let img = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    image_with_arches(img.path());
    let cf = clusterfile_with(
        "---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: daemon}\nspec:\n  path: etc/daemon.json\n  data: '{\"debug\": true}'\n\
         ---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: kubeadm}\nspec:\n  path: etc/kubeadm.yml\n  strategy: merge\n  data: |\n    networking:\n      podSubnet: 100.64.0.0/10\n\
         ---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: script}\nspec:\n  path: scripts/init.sh\n  data: \"#!/bin/sh\\necho new\\n\"\n\
         ---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {name: fresh}\nspec:\n  path: etc/new/extra.yaml\n  strategy: merge\n  data: 'a: 1'\n",
    );
    let r = resolve(img.path().to_str().unwrap(), Path::new("/"), cache.path()).unwrap();
    let layer = config_layer(&cf, &r, &[]).unwrap().unwrap();
    let tree = r.merged("arm64", std::slice::from_ref(&layer)).unwrap();
    assert_eq!(read(&tree, "etc/daemon.json"), "{\"debug\": true}");
    assert_eq!(
        read(&tree, "etc/kubeadm.yml"),
        "kind: ClusterConfiguration\nnetworking:\n  serviceSubnet: 10.96.0.0/12\n  podSubnet: 100.64.0.0/10\n"
    );
    assert_eq!(read(&tree, "scripts/init.sh"), "#!/bin/sh\necho new\n");
    assert_eq!(
        tree.get("scripts/init.sh").unwrap().entry.mode,
        0o755,
        "mode of the replaced file kept"
    );
    assert_eq!(read(&tree, "etc/new/extra.yaml"), "a: 1");
    check_templates(&r, std::slice::from_ref(&layer)).unwrap();
    // The layer lives as long as the resolved rootfs.
    drop(r);
    assert!(!layer.exists());
}

#[test]
fn config_merge_refusals_name_the_config() {
    let img = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    image_with_arches(img.path());
    write(img.path(), "amd64/etc/arch.yaml", b"a: 1\n");
    write(img.path(), "arm64/etc/arch.yaml", b"a: 2\n");
    let r = resolve(img.path().to_str().unwrap(), Path::new("/"), cache.path()).unwrap();
    let doc = |name: &str, path: &str, strategy: &str| {
        format!(
            "---\napiVersion: sealer.io/v1\nkind: Config\nmetadata: {{name: {name}}}\nspec:\n  path: {path}\n  strategy: {strategy}\n  data: 'b: 1'\n"
        )
    };
    let err = config_layer(
        &clusterfile_with(&doc("per-arch", "etc/arch.yaml", "merge")),
        &r,
        &[],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "Config \"per-arch\" (spec.path etc/arch.yaml): the file differs between the amd64 and arm64 subtrees, so one merge result cannot serve both; use strategy: overwrite, or keep the file out of the arch subtrees"
    );
    // Overwriting the same file is the same for every arch.
    config_layer(
        &clusterfile_with(&doc("per-arch", "etc/arch.yaml", "overwrite")),
        &r,
        &[],
    )
    .unwrap();
    let err = config_layer(&clusterfile_with(&doc("dir", "etc", "merge")), &r, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Config \"dir\" (spec.path etc): the rootfs has a directory"),
        "{err}"
    );
    write(img.path(), "etc/daemon.json", b"{\"a\": [1,");
    let err = config_layer(
        &clusterfile_with(&doc("bad", "etc/daemon.json", "merge")),
        &r,
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("Config \"bad\" (spec.path etc/daemon.json): the file is not valid YAML"),
        "{err}"
    );
}

#[test]
fn template_check_names_the_file() {
    let img = tempfile::tempdir().unwrap();
    let ov = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    write(
        img.path(),
        "etc/ok.conf.tmpl",
        b"x={{ .HostIP }}\n{{ or .RegistryURL \"sea.hub:5000\" }}\n",
    );
    write(img.path(), "images/not-a-template.tmpl", &[0xff, 0xfe]);
    write(img.path(), "scripts/x.tmpl", b"{{ if }}");
    let r = resolve(img.path().to_str().unwrap(), Path::new("/"), cache.path()).unwrap();
    check_templates(&r, &[]).unwrap();

    write(img.path(), "manifests/bad.yaml.tmpl", &[0xff, 0xfe]);
    let err = check_templates(&r, &[]).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "manifests/bad.yaml.tmpl: not UTF-8 text; templates must be UTF-8 (file {})",
            r.dir().join("manifests/bad.yaml.tmpl").display()
        )
    );
    fs::remove_file(img.path().join("manifests/bad.yaml.tmpl")).unwrap();

    // A broken template from an overlay names the rootfs path, position and source file.
    write(ov.path(), "etc/kubelet.conf.tmpl", b"a\nb {{ .A \n");
    let err = check_templates(&r, &[ov.path().to_path_buf()])
        .unwrap_err()
        .to_string();
    let source = ov.path().join("etc/kubelet.conf.tmpl");
    assert!(
        err.starts_with("etc/kubelet.conf.tmpl:2:")
            && err.ends_with(&format!("(file {})", source.display())),
        "{err}"
    );
}
