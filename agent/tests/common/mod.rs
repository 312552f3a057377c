//! Helpers for the agent's integration tests: a temp `--root` with a realistic base, the
//! fixture rootfs, runs of the real `installer-agent` binary, and full tree snapshots.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub(crate) const CLUSTER: &str = "c1";

pub(crate) fn fixture() -> PathBuf {
    testenv::fixture::minimal_dir()
}

/// A temp root holding what a host has before any apply: /etc/hosts, /var/lib, /usr/local.
pub(crate) struct TestRoot {
    pub dir: tempfile::TempDir,
}

impl TestRoot {
    pub(crate) fn new() -> TestRoot {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        fs::create_dir_all(p.join("etc")).unwrap();
        fs::create_dir_all(p.join("var/lib")).unwrap();
        fs::create_dir_all(p.join("usr/local")).unwrap();
        fs::write(
            p.join("etc/hosts"),
            "127.0.0.1 localhost\n::1 localhost ip6-localhost\n",
        )
        .unwrap();
        TestRoot { dir }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn rootfs_copy(&self) -> PathBuf {
        self.join(&format!("var/lib/sealer/data/{CLUSTER}/rootfs"))
    }
}

/// `installer-agent apply` against `root` with the fixture (or `rootfs`) and extra args.
pub(crate) fn apply_cmd(root: &Path, rootfs: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("installer-agent");
    cmd.args([
        "apply",
        "--json",
        "--cluster",
        CLUSTER,
        "--registry-host",
        "--host-ip",
        "10.1.2.3",
        "--role",
        "master",
    ])
    .arg("--rootfs")
    .arg(rootfs)
    .arg("--root")
    .arg(root)
    .args(extra)
    .timeout(std::time::Duration::from_secs(60));
    cmd
}

pub(crate) fn clean_cmd(root: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("installer-agent");
    cmd.args(["clean", "--json", "--cluster", CLUSTER])
        .arg("--root")
        .arg(root)
        .timeout(std::time::Duration::from_secs(60));
    cmd
}

/// Starts `installer-agent apply` on the fixture in the background, made to hang in the
/// script of `step`; returns it once the script runs (so the agent holds the host lock), with
/// the pid of the process the script left waiting.
pub(crate) fn start_hanging_apply(root: &TestRoot, step: &str) -> (std::process::Child, i32) {
    fs::write(root.join("fixture-hang-at"), step).unwrap();
    let agent = std::process::Command::new(assert_cmd::cargo::cargo_bin!("installer-agent"))
        .args(["apply", "--cluster", CLUSTER, "--host-ip", "10.1.2.3"])
        .args(["--script-timeout", "30"])
        .arg("--rootfs")
        .arg(fixture())
        .arg("--root")
        .arg(root.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let pid_file = root.join("fixture-hang-child");
    let pid = loop {
        // Written by the script once its child runs; read only when complete.
        if let Ok(text) = fs::read_to_string(&pid_file)
            && let Ok(pid) = text.trim().parse()
        {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "apply never reached the script of {step}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    (agent, pid)
}

/// The NDJSON events of a run's stdout.
pub(crate) fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Step ids of the events of one kind (`step_done`, `step_skipped`, …).
pub(crate) fn steps_with(events: &[serde_json::Value], kind: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == kind)
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect()
}

/// Every path under `root` with its kind, mode, owner and content hash (or link target).
pub(crate) fn snapshot(root: &Path) -> testenv::tree::TreeSnapshot {
    testenv::tree::snapshot(root).unwrap()
}

/// Asserts two snapshots are equal, listing the differences when not.
pub(crate) fn assert_same_tree(
    before: &testenv::tree::TreeSnapshot,
    after: &testenv::tree::TreeSnapshot,
) {
    let diffs = testenv::tree::differences(before, after);
    assert!(diffs.is_empty(), "tree differs:\n{}", diffs.join("\n"));
}

/// Reads a NUL-separated env dump written by the fixture scripts.
pub(crate) fn env_dump(path: &Path) -> BTreeMap<String, String> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let s = String::from_utf8_lossy(s);
            let (k, v) = s.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

pub(crate) fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}
