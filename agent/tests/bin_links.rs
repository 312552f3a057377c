//! Symlinks in the rootfs's `bin/`, with the real `installer-agent` in a temp `--root`: a
//! link to another file of `bin/` is installed as the same link in `/usr/local/bin`,
//! recorded (clean removes it or restores what it replaced; re-apply checks it), and a link
//! leading anywhere else is refused before anything changes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// The fixture rootfs copied, with `links` (`bin/<name>` -> target) added.
fn rootfs_with_links(links: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fixture().display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    for (name, target) in links {
        symlink(target, dir.path().join("bin").join(name)).unwrap();
    }
    dir
}

fn link_at(root: &TestRoot, name: &str) -> Option<PathBuf> {
    let path = root.join(&format!("usr/local/bin/{name}"));
    fs::symlink_metadata(&path)
        .ok()
        .filter(|m| m.file_type().is_symlink())
        .map(|_| fs::read_link(&path).unwrap())
}

fn started(out: &assert_cmd::assert::Assert, step: &str) -> Option<String> {
    events(&out.get_output().stdout)
        .into_iter()
        .find(|e| e["event"] == "step_started" && e["step"] == step)
        .map(|e| e["reason"].as_str().unwrap_or("").to_string())
}

#[test]
fn links_in_bin_are_installed_as_links_checked_on_reapply_and_removed_by_clean() {
    let rootfs = rootfs_with_links(&[
        ("hello-alias", "fixture-hello"),
        ("hello-chain", "./hello-alias"),
        ("tool-up", "../bin/fixture-tool"),
    ]);
    let root = TestRoot::new();
    // The host already has a file of its own under one link's name: backed up, restored.
    fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    fs::write(root.join("usr/local/bin/tool-up"), "the host's own\n").unwrap();
    let before = snapshot(root.path());

    apply_cmd(root.path(), rootfs.path(), &[])
        .assert()
        .success();
    assert_eq!(
        link_at(&root, "hello-alias").as_deref(),
        Some(Path::new("fixture-hello"))
    );
    assert_eq!(
        link_at(&root, "hello-chain").as_deref(),
        Some(Path::new("hello-alias"))
    );
    assert_eq!(
        link_at(&root, "tool-up").as_deref(),
        Some(Path::new("fixture-tool"))
    );
    // They lead to the installed files, not into the rootfs copy.
    assert_eq!(
        fs::read(root.join("usr/local/bin/hello-chain")).unwrap(),
        fs::read(fixture().join("bin/fixture-hello")).unwrap()
    );

    // Re-apply: the links are what install-bin left, nothing to do.
    let again = apply_cmd(root.path(), rootfs.path(), &[])
        .assert()
        .success();
    assert_eq!(started(&again, "install-bin"), None);

    // A link pointed elsewhere is drift: re-apply says so and puts it back.
    fs::remove_file(root.join("usr/local/bin/hello-alias")).unwrap();
    symlink("fixture-tool", root.join("usr/local/bin/hello-alias")).unwrap();
    let repaired = apply_cmd(root.path(), rootfs.path(), &[])
        .assert()
        .success();
    let reason = started(&repaired, "install-bin").expect("install-bin ran again");
    assert!(
        reason.contains("/usr/local/bin/hello-alias changed"),
        "{reason}"
    );
    assert_eq!(
        link_at(&root, "hello-alias").as_deref(),
        Some(Path::new("fixture-hello"))
    );

    clean_cmd(root.path()).assert().success();
    assert_same_tree(&before, &snapshot(root.path()));
}

#[test]
fn a_link_a_person_changed_after_apply_is_kept_by_clean() {
    let rootfs = rootfs_with_links(&[("hello-alias", "fixture-hello")]);
    let root = TestRoot::new();
    apply_cmd(root.path(), rootfs.path(), &[])
        .assert()
        .success();
    fs::remove_file(root.join("usr/local/bin/hello-alias")).unwrap();
    symlink("/opt/mine", root.join("usr/local/bin/hello-alias")).unwrap();
    let out = clean_cmd(root.path()).assert().code(1);
    let kept = events(&out.get_output().stdout)
        .into_iter()
        .any(|e| e["event"] == "not_undone" && e["what"] == "/usr/local/bin/hello-alias");
    assert!(
        kept,
        "{}",
        String::from_utf8_lossy(&out.get_output().stdout)
    );
    assert_eq!(
        link_at(&root, "hello-alias").as_deref(),
        Some(Path::new("/opt/mine"))
    );
    // --force removes it like any other changed file.
    clean_cmd(root.path()).arg("--force").assert().success();
    assert!(link_at(&root, "hello-alias").is_none());
}

#[test]
fn a_link_in_bin_leading_anywhere_else_is_refused_before_anything_changes() {
    for (target, why) in [
        // Inside the rootfs, but not a file install-bin installs.
        (
            "../etc/static.conf",
            "it leads to etc/static.conf, outside bin/",
        ),
        ("../scripts", "it leads to scripts, outside bin/"),
        ("missing-tool", "bin/missing-tool is not in the rootfs"),
    ] {
        let rootfs = rootfs_with_links(&[("evil", target)]);
        let root = TestRoot::new();
        let before = snapshot(root.path());
        let out = apply_cmd(root.path(), rootfs.path(), &[]).assert().code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(
            stderr.contains(&format!("bin/evil -> {target:?} is refused: {why}")),
            "{target}: {stderr}"
        );
        assert_same_tree(&before, &snapshot(root.path()));
    }
}
