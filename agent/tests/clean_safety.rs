//! Clean and re-apply on hosts that matter: the real `installer-agent` in a temp `--root`.
//! Clean never removes what apply did not create, never loses a backup, keeps what a person
//! changed, and leaves nothing of a crash behind; one agent runs per host; two clusters
//! never share a file; re-apply repairs what drifted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod common;

use common::*;
use std::fs;
use std::time::{Duration, Instant};

fn agent() -> assert_cmd::Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("installer-agent");
    cmd.timeout(Duration::from_secs(60));
    cmd
}

fn stdout_events(out: &assert_cmd::assert::Assert) -> Vec<serde_json::Value> {
    events(&out.get_output().stdout)
}

fn not_undone(ev: &[serde_json::Value]) -> Vec<(String, String)> {
    ev.iter()
        .filter(|e| e["event"] == "not_undone")
        .map(|e| {
            (
                e["what"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn clean_never_removes_a_cluster_directory_apply_did_not_create() {
    let root = TestRoot::new();
    let volume = root.join("data/docker/volumes/db/data");
    fs::create_dir_all(&volume).unwrap();
    fs::write(volume.join("rows"), "precious").unwrap();
    let before = snapshot(root.path());
    let out = agent()
        .args([
            "clean",
            "--json",
            "--cluster",
            "docker",
            "--data-root",
            "/data",
        ])
        .arg("--root")
        .arg(root.path())
        .assert()
        .success();
    let ev = stdout_events(&out);
    assert!(ev.iter().all(|e| e["event"] != "undone"), "{ev:?}");
    let warning = ev.iter().find(|e| e["event"] == "warning").unwrap();
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("/data/docker: not created by installer"),
        "{warning}"
    );
    assert_same_tree(&before, &snapshot(root.path()));

    // Nor does apply take it over.
    let out = agent()
        .args(["apply", "--cluster", "docker", "--data-root", "/data"])
        .args(["--host-ip", "10.1.2.3", "--rootfs"])
        .arg(fixture())
        .arg("--root")
        .arg(root.path())
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("was not created by installer"), "{stderr}");
    assert_same_tree(&before, &snapshot(root.path()));
}

#[test]
fn a_data_root_on_system_directories_is_refused_before_anything_changes() {
    let root = TestRoot::new();
    fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    fs::write(root.join("var/lib/dpkg/status"), "Package: base-files\n").unwrap();
    let before = snapshot(root.path());
    for (data_root, cluster, why) in [
        ("/var/lib", "docker", "/var/lib is a system directory"),
        ("/var", "lib", "/var is a system directory"),
        ("/usr/local", "bin", "/usr/local is a system directory"),
    ] {
        for verb in ["apply", "clean"] {
            let mut cmd = agent();
            cmd.args([verb, "--cluster", cluster, "--data-root", data_root])
                .arg("--root")
                .arg(root.path());
            if verb == "apply" {
                cmd.arg("--rootfs").arg(fixture());
            }
            let out = cmd.assert().code(2);
            let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
            assert!(stderr.contains(why), "{verb} {data_root}: {stderr}");
        }
    }
    assert_same_tree(&before, &snapshot(root.path()));
}

#[test]
fn a_failed_restore_keeps_the_backup_and_a_second_clean_finishes() {
    let root = TestRoot::new();
    fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    fs::write(root.join("usr/local/bin/fixture-hello"), "the host's own\n").unwrap();
    let before = snapshot(root.path());
    apply_cmd(root.path(), &fixture(), &[]).assert().success();
    // The restore cannot write (as on a full disk): where its temporary file goes, a
    // directory stands in the way.
    let blocker = root.join("usr/local/bin/.fixture-hello.installer-tmp");
    fs::create_dir_all(blocker.join("x")).unwrap();
    let out = clean_cmd(root.path()).assert().code(1);
    let failed = not_undone(&stdout_events(&out));
    assert!(
        failed
            .iter()
            .any(|(what, _)| what == "/usr/local/bin/fixture-hello"),
        "{failed:?}"
    );
    let state = root.join(&format!("var/lib/sealer/data/{CLUSTER}/state"));
    assert!(state.join("journal.json").is_file(), "the record must stay");
    assert!(
        fs::read_dir(state.join("backup")).unwrap().count() > 0,
        "the backup must stay"
    );
    assert_eq!(
        fs::read_to_string(root.join("usr/local/bin/fixture-hello")).unwrap(),
        fs::read_to_string(fixture().join("bin/fixture-hello")).unwrap(),
        "nothing was half-restored"
    );
    fs::remove_dir_all(&blocker).unwrap();
    let out = clean_cmd(root.path()).assert().success();
    assert!(not_undone(&stdout_events(&out)).is_empty());
    assert_same_tree(&before, &snapshot(root.path()));
    // And a third clean is a no-op.
    let out = clean_cmd(root.path()).assert().success();
    assert!(stdout_events(&out).iter().all(|e| e["event"] != "undone"));
}

#[test]
fn a_file_a_person_changed_after_apply_is_kept_unless_forced() {
    let root = TestRoot::new();
    let before = snapshot(root.path());
    apply_cmd(root.path(), &fixture(), &[]).assert().success();
    let tool = root.join("usr/local/bin/fixture-tool");
    fs::write(&tool, "#!/bin/sh\necho patched by the operator\n").unwrap();
    let rendered = root.rootfs_copy().join("etc/app/app.conf");
    fs::write(&rendered, "tuned = by hand\n").unwrap();

    let out = clean_cmd(root.path()).assert().code(1);
    let kept = not_undone(&stdout_events(&out));
    for path in [
        "/usr/local/bin/fixture-tool".to_string(),
        format!("/var/lib/sealer/data/{CLUSTER}/rootfs/etc/app/app.conf"),
    ] {
        let reason = kept
            .iter()
            .find(|(w, _)| *w == path)
            .map(|(_, r)| r.clone());
        assert!(
            reason
                .as_deref()
                .is_some_and(|r| r.starts_with("changed since apply, kept")),
            "{path}: {kept:?}"
        );
    }
    assert_eq!(
        fs::read_to_string(&tool).unwrap(),
        "#!/bin/sh\necho patched by the operator\n"
    );
    assert_eq!(fs::read_to_string(&rendered).unwrap(), "tuned = by hand\n");
    // Everything else was undone; what is left is only what was kept.
    assert!(!root.join("usr/local/bin/fixture-hello").exists());

    clean_cmd(root.path()).arg("--force").assert().success();
    assert_same_tree(&before, &snapshot(root.path()));
}

#[test]
fn two_clusters_that_would_share_a_file_are_refused_and_the_hosts_original_survives() {
    let root = TestRoot::new();
    fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    fs::write(root.join("usr/local/bin/fixture-hello"), "the host's own\n").unwrap();
    let before = snapshot(root.path());
    apply_cmd(root.path(), &fixture(), &[]).assert().success();
    let after_a = snapshot(root.path());
    let out = agent()
        .args(["apply", "--json", "--cluster", "b", "--host-ip", "10.1.2.3"])
        .arg("--rootfs")
        .arg(fixture())
        .arg("--root")
        .arg(root.path())
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stderr.contains("cluster \"c1\" (dataRoot /var/lib/sealer/data) already installed /usr/local/bin/fixture-hello"),
        "{stderr}"
    );
    // The refusal changed nothing.
    assert_same_tree(&after_a, &snapshot(root.path()));
    clean_cmd(root.path()).assert().success();
    assert_same_tree(&before, &snapshot(root.path()));
}

#[test]
fn a_killed_agent_takes_its_script_with_it_and_leaves_nothing_for_clean() {
    let root = TestRoot::new();
    let before = snapshot(root.path());
    let (mut first, child) = start_hanging_apply(&root, "init-kube");
    first.kill().unwrap();
    first.wait().unwrap();
    // The script's own child dies with the agent, within a second.
    let deadline = Instant::now() + Duration::from_secs(2);
    while std::path::Path::new(&format!("/proc/{child}")).exists()
        && !fs::read_to_string(format!("/proc/{child}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        assert!(Instant::now() < deadline, "the script outlived its agent");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A write the crash interrupted: its temporary file next to a recorded target.
    let tmp = root.join("usr/local/bin/.fixture-hello.installer-tmp");
    fs::write(&tmp, "half a binary").unwrap();
    fs::remove_file(root.join("fixture-hang-at")).unwrap();
    fs::remove_file(root.join("fixture-hang-child")).unwrap();
    clean_cmd(root.path()).assert().success();
    assert!(!tmp.exists());
    assert_same_tree(&before, &snapshot(root.path()));
}

#[test]
fn reapply_repairs_what_drifted_and_dry_run_shows_it() {
    let root = TestRoot::new();
    apply_cmd(root.path(), &fixture(), &[]).assert().success();
    let tool = root.join("usr/local/bin/fixture-tool");
    let good = fs::read(&tool).unwrap();
    fs::remove_file(&tool).unwrap();
    let rendered = root.rootfs_copy().join("etc/app/app.conf");
    fs::write(&rendered, "edited\n").unwrap();

    let out = apply_cmd(root.path(), &fixture(), &["--dry-run"])
        .assert()
        .success();
    let ev = stdout_events(&out);
    let would: Vec<(String, String)> = ev
        .iter()
        .filter(|e| e["event"] == "would_run")
        .map(|e| {
            (
                e["step"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        would.contains(&(
            "install-bin".into(),
            "drifted: /usr/local/bin/fixture-tool is missing".into()
        )),
        "{would:?}"
    );
    assert!(
        would.contains(&(
            "render-templates".into(),
            format!("drifted: /var/lib/sealer/data/{CLUSTER}/rootfs/etc/app/app.conf changed")
        )),
        "{would:?}"
    );
    assert!(!tool.exists(), "a dry run changes nothing");

    let out = apply_cmd(root.path(), &fixture(), &[]).assert().success();
    let ev = stdout_events(&out);
    let started: Vec<String> = steps_with(&ev, "step_started");
    assert!(started.contains(&"install-bin".to_string()), "{started:?}");
    assert!(
        started.contains(&"render-templates".to_string()),
        "{started:?}"
    );
    assert_eq!(fs::read(&tool).unwrap(), good);
    assert_ne!(fs::read_to_string(&rendered).unwrap(), "edited\n");
    // Converged: nothing runs now.
    let out = apply_cmd(root.path(), &fixture(), &[]).assert().success();
    assert!(steps_with(&stdout_events(&out), "step_started").is_empty());
}

#[test]
fn a_symlinked_hosts_file_stays_a_link_and_its_target_is_edited_and_restored() {
    let root = TestRoot::new();
    // As on cloud images: /etc/hosts is a link into another directory.
    fs::create_dir_all(root.join("run/cloud")).unwrap();
    fs::rename(root.join("etc/hosts"), root.join("run/cloud/hosts")).unwrap();
    std::os::unix::fs::symlink("/run/cloud/hosts", root.join("etc/hosts")).unwrap();
    let before = snapshot(root.path());
    apply_cmd(root.path(), &fixture(), &[]).assert().success();
    let link = fs::symlink_metadata(root.join("etc/hosts")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    let text = fs::read_to_string(root.join("run/cloud/hosts")).unwrap();
    assert!(text.contains("#hostalias-set-by-sealer"), "{text}");
    // Re-apply finds the lines through the link: nothing drifted.
    let out = apply_cmd(root.path(), &fixture(), &[]).assert().success();
    assert!(steps_with(&stdout_events(&out), "step_started").is_empty());
    clean_cmd(root.path()).assert().success();
    assert_same_tree(&before, &snapshot(root.path()));
}
