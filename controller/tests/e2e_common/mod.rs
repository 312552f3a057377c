//! Shared by the end-to-end suites: the static agent build, the fixture rootfs, running the
//! real `installer` binary against testenv hosts, and reading its NDJSON events.

#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)] // test support: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding the static agent build: `INSTALLER_AGENT_DIR` (set by
/// scripts/test.sh), else built now with scripts/build-agent.sh.
pub(crate) fn agent_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("INSTALLER_AGENT_DIR") {
        return PathBuf::from(dir);
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let out = Command::new(repo.join("scripts/build-agent.sh"))
                .output()
                .expect("running scripts/build-agent.sh");
            assert!(
                out.status.success(),
                "building the static agent failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

/// The realistic fixture rootfs (built once, cached by testenv).
pub(crate) fn fixture_rootfs() -> testenv::fixture::RootfsInfo {
    static INFO: std::sync::OnceLock<testenv::fixture::RootfsInfo> = std::sync::OnceLock::new();
    INFO.get_or_init(|| {
        let out = testenv::cache::cache_dir().join("e2e-rootfs");
        testenv::fixture::build_rootfs(&out, &testenv::fixture::RootfsOptions::default())
            .expect("building the fixture rootfs")
    })
    .clone()
}

/// The outcome of one `installer` run.
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub events: Vec<serde_json::Value>,
}

impl Run {
    /// Events of `type` (`agent`, `host_finished`, …).
    pub(crate) fn of_type(&self, ty: &str) -> Vec<&serde_json::Value> {
        self.events.iter().filter(|e| e["type"] == ty).collect()
    }

    /// Agent events of kind `event` (`step_started`, …) for `host` (any host when None).
    pub(crate) fn agent(&self, event: &str, host: Option<&str>) -> Vec<&serde_json::Value> {
        self.of_type("agent")
            .into_iter()
            .filter(|e| e["event"] == event && host.is_none_or(|h| e["host"] == h))
            .collect()
    }

    /// Steps that started on `host`.
    pub(crate) fn started(&self, host: &str) -> Vec<String> {
        self.agent("step_started", Some(host))
            .iter()
            .map(|e| e["step"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Steps reported done or skipped on `host`, in order; asserts none is reported twice
    /// (apply's two passes must not repeat what the first one settled).
    pub(crate) fn settled_once(&self, host: &str) -> Vec<String> {
        let steps: Vec<String> = self
            .of_type("agent")
            .into_iter()
            .filter(|e| {
                e["host"] == host && (e["event"] == "step_done" || e["event"] == "step_skipped")
            })
            .map(|e| e["step"].as_str().unwrap_or_default().to_string())
            .collect();
        let mut unique = steps.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            steps.len(),
            "{host}: a step reported twice: {steps:?}"
        );
        steps
    }

    /// The final status of `host`.
    pub(crate) fn status(&self, host: &str) -> serde_json::Value {
        self.of_type("host_finished")
            .into_iter()
            .find(|e| e["host"] == host)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    }

    /// Compressed bytes sent to `host` in this run.
    pub(crate) fn bytes_sent(&self, host: &str) -> u64 {
        self.of_type("transfer_done")
            .iter()
            .filter(|e| e["host"] == host)
            .map(|e| e["bytes_sent"].as_u64().unwrap_or(0))
            .sum()
    }

    /// Files sent to `host` in this run.
    pub(crate) fn files_sent(&self, host: &str) -> u64 {
        self.of_type("transfer_done")
            .iter()
            .filter(|e| e["host"] == host)
            .map(|e| e["files"].as_u64().unwrap_or(0))
            .sum()
    }

    /// Files `host` got in this run: sent by the controller, or fetched from the cluster's
    /// registry (the fan-out).
    pub(crate) fn files_moved(&self, host: &str) -> u64 {
        let fetched: u64 = self
            .of_type("fetched")
            .iter()
            .filter(|e| e["host"] == host)
            .map(|e| e["files"].as_u64().unwrap_or(0))
            .sum();
        self.files_sent(host) + fetched
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `installer <args>` with JSON output against a testenv cluster's files, ready to run
/// (add env, pipes).
pub(crate) fn installer_command(cluster: &testenv::hosts::Cluster, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_installer"));
    cmd.args(args)
        .arg("-f")
        .arg(cluster.clusterfile_path())
        .arg("--known-hosts")
        .arg(cluster.known_hosts_path())
        .arg("--agent-dir")
        .arg(agent_dir())
        .arg("--log-dir")
        .arg(cluster.workdir().join("runs"))
        .args(["-o", "json"])
        .env("HOME", cluster.workdir());
    cmd
}

/// Runs `installer <args>` with JSON output against a testenv cluster's files.
pub(crate) fn installer(cluster: &testenv::hosts::Cluster, args: &[&str]) -> Run {
    let run = run_of(&mut installer_command(cluster, args));
    eprintln!("installer {}: exit {}", args.join(" "), run.code);
    run
}

/// Runs a prepared `installer` command to its end and reads its events.
pub(crate) fn run_of(cmd: &mut Command) -> Run {
    let out = cmd.output().expect("running installer");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let events = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        events,
    }
}

/// Runs a shell command on host `i` (through docker exec), returning stdout; panics with
/// the output when it fails.
pub(crate) fn sh(cluster: &testenv::hosts::Cluster, i: usize, script: &str) -> String {
    let out = cluster.exec(i, &["sh", "-c", script]).expect("docker exec");
    assert!(
        out.success(),
        "on node{}: `{script}` failed:\n{}\n{}",
        i + 1,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Asserts host `i` is as it was in `before`, listing every difference.
pub(crate) fn assert_as_before(
    cluster: &testenv::hosts::Cluster,
    i: usize,
    before: &testenv::hosts::Snapshot,
) {
    let changes = testenv::hosts::diff(before, &cluster.snapshot(i).unwrap());
    assert!(
        changes.is_empty(),
        "node{} differs from before:\n{}",
        i + 1,
        changes
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Asserts that host `i` has no systemd unit matching `units` (space-separated globs) and
/// no process whose name matches `procs` (a pgrep pattern: names, not command lines, which
/// would match the checking shell itself).
pub(crate) fn assert_nothing_left(
    cluster: &testenv::hosts::Cluster,
    i: usize,
    units: &str,
    procs: &str,
) {
    let left = sh(
        cluster,
        i,
        &format!("systemctl list-units --all --no-legend {units} | wc -l"),
    );
    assert_eq!(left.trim(), "0", "node{}: units left", i + 1);
    let left = sh(cluster, i, &format!("pgrep -l '{procs}' || true"));
    assert_eq!(left.trim(), "", "node{}: processes left", i + 1);
}

/// `nodes` testenv hosts (the first a master) whose Clusterfile names `rootfs`, and their IPs.
pub(crate) fn up(nodes: usize, rootfs: &Path) -> (testenv::hosts::Cluster, Vec<String>) {
    let cluster = testenv::hosts::Cluster::up(testenv::hosts::UpOptions {
        nodes,
        rootfs: Some(rootfs.to_path_buf()),
        ..testenv::hosts::UpOptions::default()
    })
    .unwrap_or_else(|e| panic!("bringing up {nodes} hosts: {e}"));
    let ips = cluster.hosts().iter().map(|h| h.ip.to_string()).collect();
    (cluster, ips)
}

/// Rewrites the cluster's Clusterfile line by line: `edit` gives each line's replacement
/// (none, one or several lines).
pub(crate) fn edit_clusterfile(
    cluster: &testenv::hosts::Cluster,
    edit: impl Fn(&str) -> Vec<String>,
) {
    let path = cluster.clusterfile_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<String> = text.lines().flat_map(&edit).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

/// Points the cluster's Clusterfile at `image` (`spec.image`).
pub(crate) fn set_image(cluster: &testenv::hosts::Cluster, image: &Path) {
    edit_clusterfile(cluster, |l| {
        if l.trim_start().starts_with("image:") {
            vec![format!("  image: '{}'", image.display())]
        } else {
            vec![l.to_string()]
        }
    });
}
