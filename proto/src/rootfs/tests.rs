//! The merged-rootfs tests: layers, arch subtrees, links, names and machines.

use super::*;
use crate::elf::header_for;

fn write(root: &Path, rel: &str, content: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn merge(dir: &Path, arch: &str, overlays: &[PathBuf]) -> MergedTree {
    MergedTree::merge(dir, arch, overlays, &mut hash_file_content).unwrap()
}

#[test]
fn arch_subtree_and_overlays_merge_in_order() {
    let img = tempfile::tempdir().unwrap();
    let ov = tempfile::tempdir().unwrap();
    write(img.path(), "etc/daemon.json", b"base");
    write(img.path(), "bin/kubectl", b"generic");
    write(img.path(), "amd64/bin/kubectl", b"amd64 build");
    write(img.path(), "arm64/bin/kubectl", b"arm64 build");
    write(ov.path(), "etc/daemon.json", b"user");
    write(ov.path(), "scripts/preHook.sh", b"echo hi");

    let tree = merge(img.path(), "amd64", &[ov.path().to_path_buf()]);
    let m = tree.manifest().unwrap();
    let paths: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "bin",
            "bin/kubectl",
            "etc",
            "etc/daemon.json",
            "scripts",
            "scripts/preHook.sh"
        ]
    );
    assert_eq!(
        fs::read(tree.source("bin/kubectl").unwrap()).unwrap(),
        b"amd64 build"
    );
    assert_eq!(
        fs::read(tree.source("etc/daemon.json").unwrap()).unwrap(),
        b"user"
    );
    assert_eq!(
        m.get("etc/daemon.json").unwrap().sha256().unwrap(),
        manifest::sha256_bytes(b"user")
    );
    let arm = merge(img.path(), "arm64", &[]);
    assert_eq!(
        fs::read(arm.source("bin/kubectl").unwrap()).unwrap(),
        b"arm64 build"
    );
}

#[test]
fn nested_rootfs_layout_is_the_base() {
    let img = tempfile::tempdir().unwrap();
    write(img.path(), "rootfs/etc/a", b"a");
    write(img.path(), "amd64/bin/x", b"x");
    write(img.path(), "Kubefile", b"FROM scratch");
    let m = merge(img.path(), "amd64", &[]).manifest().unwrap();
    let paths: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["bin", "bin/x", "etc", "etc/a"]);
}

#[test]
fn a_file_over_a_directory_replaces_the_whole_subtree() {
    let img = tempfile::tempdir().unwrap();
    let ov = tempfile::tempdir().unwrap();
    write(img.path(), "etc/conf.d/a", b"a");
    write(img.path(), "etc/conf.d/b", b"b");
    write(ov.path(), "etc/conf.d", b"now a file");
    let m = merge(img.path(), "amd64", &[ov.path().to_path_buf()])
        .manifest()
        .unwrap();
    let paths: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["etc", "etc/conf.d"]);
    assert!(m.get("etc/conf.d").unwrap().is_file());
}

#[test]
fn the_manifest_lists_everything_sorted_with_hashes_and_modes() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "bin/tool", b"#!/bin/sh\n");
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    write(root, "etc/sub/a.conf", b"hello");
    symlink("tool", root.join("bin/alias")).unwrap();

    let m = merge(root, "amd64", &[]).manifest().unwrap();
    let paths: Vec<_> = m.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "bin",
            "bin/alias",
            "bin/tool",
            "etc",
            "etc/sub",
            "etc/sub/a.conf"
        ]
    );
    let tool = m.get("bin/tool").unwrap();
    assert_eq!(tool.mode, 0o755);
    assert_eq!(tool.size(), 10);
    assert_eq!(
        m.get("etc/sub/a.conf").unwrap().sha256(),
        Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    );
    assert_eq!(
        m.get("bin/alias").unwrap().kind,
        EntryKind::Symlink {
            target: "tool".into()
        }
    );
    assert_eq!(m.files().map(Entry::size).sum::<u64>(), 15);
    m.validate().unwrap();
}

#[test]
fn an_absolute_link_out_of_the_tree_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/shadow", dir.path().join("evil")).unwrap();
    let err = MergedTree::merge(dir.path(), "amd64", &[], &mut hash_file_content)
        .and_then(|t| t.manifest())
        .unwrap_err()
        .to_string();
    assert!(err.contains("leads outside the rootfs"), "{err}");
}

#[test]
fn templates_are_tmpl_files_of_the_rendered_directories() {
    for yes in [
        "etc/kubeadm.yml.tmpl",
        "statics/a/b.tmpl",
        "manifests/x.tmpl",
    ] {
        assert!(is_template(yes), "{yes}");
    }
    for no in [
        "etc/kubeadm.yml",
        "scripts/init.sh.tmpl",
        "x.tmpl",
        "etcx/a.tmpl",
    ] {
        assert!(!is_template(no), "{no}");
    }
}

#[test]
fn bin_binaries_of_another_machine_are_refused() {
    let img = tempfile::tempdir().unwrap();
    write(img.path(), "bin/tool", &header_for(183));
    write(img.path(), "bin/script.sh", b"#!/bin/sh\n");
    write(img.path(), "cri/other", &header_for(183));
    let tree = merge(img.path(), "amd64", &[]);
    let err = tree.check_bin_machine("x86_64").unwrap_err().to_string();
    assert_eq!(
        err,
        "bin/tool: built for aarch64, but the host is x86_64; put it under amd64/bin/ (per-architecture subtree) or ship the x86_64 build"
    );
    tree.check_bin_machine("aarch64").unwrap();
}

/// `outside/` beside the image, holding a decoy secret, and the chain of links from the
/// report that reaches it while every link is "inside" by its text.
fn image_with_escaping_chain(top: &Path, link_name: &str) -> PathBuf {
    use std::os::unix::fs::symlink;
    write(top, "outside/.ssh/id_ed25519", b"DECOY-SECRET-7f3a");
    write(top, "outside/bin/secretfile", b"DECOY-SECRET-7f3a");
    let img = top.join("img");
    write(&img, "etc/daemon.json", b"{}");
    fs::create_dir_all(img.join("a/b/c/d")).unwrap();
    symlink("../../../..", img.join("a/b/c/d/up")).unwrap();
    // From `img`, four `..` past the top: `up` leads back to `img`, and the rest of
    // the target walks out of it into `outside`.
    symlink("a/b/c/d/up/../outside", img.join(link_name)).unwrap();
    img
}

#[test]
fn an_arch_subtree_link_that_leaves_the_image_is_refused() {
    let top = tempfile::tempdir().unwrap();
    let img = image_with_escaping_chain(top.path(), "amd64");
    let err = MergedTree::merge(&img, "amd64", &[], &mut hash_file_content)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            r#"symlink "amd64" -> "a/b/c/d/up/../outside" leads outside the rootfs (to "{}", via "a/b/c/d/up" -> "../../../.."); every link must resolve to a path inside the rootfs (file {})"#,
            top.path().join("outside").display(),
            img.join("amd64").display()
        )
    );
    // A host of the other architecture neither gets the link nor anything it leads to.
    let arm = merge(&img, "arm64", &[]);
    assert!(arm.get("amd64").is_none() && arm.get("bin/secretfile").is_none());
    let err = arch_subtree(&img, "amd64").unwrap_err().to_string();
    assert!(err.contains("leads outside the rootfs"), "{err}");
}

#[test]
fn a_rootfs_link_that_leaves_the_image_is_refused() {
    let top = tempfile::tempdir().unwrap();
    let img = image_with_escaping_chain(top.path(), "rootfs");
    let err = MergedTree::merge(&img, "amd64", &[], &mut hash_file_content)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(r#"symlink "rootfs" -> "a/b/c/d/up/../outside" leads outside"#),
        "{err}"
    );
    assert!(base_dir(&img).is_err());
}

#[test]
fn subtree_links_that_stay_inside_are_followed() {
    use std::os::unix::fs::symlink;
    let img = tempfile::tempdir().unwrap();
    write(img.path(), "x86/bin/kubelet", b"amd64 build");
    write(img.path(), "layout/etc/a", b"a");
    symlink("x86", img.path().join("amd64")).unwrap();
    symlink("layout", img.path().join("rootfs")).unwrap();
    symlink("etc/nothing-here", img.path().join("arm64")).unwrap();
    let tree = merge(img.path(), "amd64", &[]);
    assert_eq!(
        fs::read(tree.source("bin/kubelet").unwrap()).unwrap(),
        b"amd64 build"
    );
    assert_eq!(
        tree.source("etc/a").unwrap(),
        img.path().join("layout/etc/a")
    );
    let err = MergedTree::merge(img.path(), "arm64", &[], &mut hash_file_content)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("which is not a directory inside the rootfs"),
        "{err}"
    );
}

/// A link that would resolve to the host's `/etc/shadow` once placed at
/// `<dataRoot>/<cluster>/rootfs` (four levels below `/`).
#[test]
fn a_link_of_the_tree_that_leaves_it_through_another_is_refused() {
    use std::os::unix::fs::symlink;
    let img = tempfile::tempdir().unwrap();
    fs::create_dir_all(img.path().join("a/b/c/d")).unwrap();
    fs::create_dir_all(img.path().join("etc")).unwrap();
    symlink("../../../..", img.path().join("a/b/c/d/up")).unwrap();
    symlink(
        "../a/b/c/d/up/../../../../etc/shadow",
        img.path().join("etc/shadow"),
    )
    .unwrap();
    let err = MergedTree::merge(img.path(), "amd64", &[], &mut hash_file_content)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(r#"symlink "etc/shadow" -> "../a/b/c/d/up/../../../../etc/shadow" leads outside the rootfs (to "<rootfs>/../../../../etc/shadow""#),
        "{err}"
    );
    // An overlay's link is resolved against the merged tree, through the base's links.
    let ov = tempfile::tempdir().unwrap();
    fs::remove_file(img.path().join("etc/shadow")).unwrap();
    fs::create_dir_all(ov.path().join("etc")).unwrap();
    symlink("../a/b/c/d/up/..", ov.path().join("etc/up")).unwrap();
    let err = MergedTree::merge(
        img.path(),
        "amd64",
        &[ov.path().to_path_buf()],
        &mut hash_file_content,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("leads outside")
            && err.ends_with(&format!("(file {})", ov.path().join("etc/up").display())),
        "{err}"
    );
}

#[test]
fn names_with_control_characters_are_refused() {
    let img = tempfile::tempdir().unwrap();
    write(img.path(), "bin/evil\nname", b"#!/bin/sh\n");
    let err = MergedTree::merge(img.path(), "amd64", &[], &mut hash_file_content)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        r#""bin/evil\nname": contains the control character U+000A; rename it (names with control characters are refused)"#
    );
    let img = tempfile::tempdir().unwrap();
    use std::os::unix::ffi::OsStrExt;
    write(img.path(), "etc/ok", b"");
    fs::write(
        img.path()
            .join("etc")
            .join(std::ffi::OsStr::from_bytes(b"bad\xff")),
        b"",
    )
    .unwrap();
    let err = MergedTree::merge(img.path(), "amd64", &[], &mut hash_file_content)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with(r#"/etc/bad\xFF": the name is not valid UTF-8; rename it"#),
        "{err}"
    );
}

#[test]
fn missing_image_dir_is_a_clear_error() {
    let err = MergedTree::merge(
        Path::new("/nonexistent/rootfs"),
        "amd64",
        &[],
        &mut hash_file_content,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a directory"), "{err}");
}
