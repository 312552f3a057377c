//! End to end: a rootfs with NO clean scripts, like sealer's basefs. Its scripts install
//! into `/usr/bin` and `/etc`, append to `/etc/sysctl.conf`, edit `/etc/fstab` in place,
//! enable units and start daemons that create their own state (containerd's
//! `/var/lib/containerd`, `/opt/containerd`, `/etc/cni/net.d`; the stand-in fixture-daemon's
//! `/var/lib/fixture-daemon`, `/opt/fixture-daemon`) and record none of it
//! (`testenv::fixture::no_clean`). `installer clean` alone must still put every host back to
//! its pre-apply snapshot, with no unit or process of ours left:
//!
//! 1. after a successful apply (with a Clusterfile plugin hook that writes too);
//! 2. after an apply whose `--overlay` preHook.sh writes and then fails, after init-kube;
//! 3. after a clean killed half-way (the agent `kill -9`ed on one host while that host's
//!    clean waits for fixture-daemon to stop): the next clean finishes the job, and a third
//!    is a no-op.
//!
//! The three scenarios run one at a time (each on its own two hosts, master + node): each
//! starts containerd on both hosts, more than a small machine runs twice at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use e2e_common::*;
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use testenv::fixture::RootfsInfo;
use testenv::hosts::{Change, Cluster, FileKind, Snapshot, UpOptions};

/// Units and processes (pgrep names) of ours that must not outlive a clean.
const UNITS: &str = "'containerd*' 'kubelet*' 'fixture-daemon*'";
const PROCS: &str = "containerd|docker-regis|installer-age|fixture-daemon";

/// What apply leaves on every host (each must show in the snapshot diff, so the test proves
/// the snapshot sees it): `+` added, `~` changed in place. `{cluster}` is the cluster name.
const RESIDUE: &[(&str, &str)] = &[
    // install-bin (the agent) and init-kube.sh's copy of bin/ into /usr/bin (basefs).
    ("+", "/usr/local/bin/kubelet"),
    ("+", "/usr/bin/kubelet"),
    ("+", "/usr/bin/kubeadm"),
    ("+", "/usr/bin/kubectl"),
    ("+", "/usr/bin/fixture-daemon"),
    // init-container-runtime.sh
    ("+", "/usr/bin/containerd"),
    ("+", "/usr/bin/ctr"),
    ("+", "/usr/bin/runc"),
    ("+", "/etc/containerd/config.toml"),
    ("+", "/etc/containerd/certs.d/sea.hub:5000/hosts.toml"),
    ("+", "/etc/systemd/system/containerd.service"),
    (
        "+",
        "/etc/systemd/system/multi-user.target.wants/containerd.service",
    ),
    // init-kube.sh
    ("+", "/etc/systemd/system/kubelet.service"),
    ("+", "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"),
    (
        "+",
        "/etc/systemd/system/multi-user.target.wants/kubelet.service",
    ),
    ("+", "/var/lib/kubelet"),
    ("+", "/etc/sysctl.d/k8s.conf"),
    ("+", "/etc/modules-load.d/k8s.conf"),
    ("~", "/etc/sysctl.conf"),
    ("~", "/etc/fstab"),
    ("+", "/etc/default/fixture-daemon"),
    ("+", "/etc/systemd/system/fixture-daemon.service"),
    (
        "+",
        "/etc/systemd/system/multi-user.target.wants/fixture-daemon.service",
    ),
    // What the daemons create themselves while they run.
    ("+", "/var/lib/fixture-daemon/data/ready"),
    ("+", "/opt/fixture-daemon/plugins/registered"),
    ("+", "/opt/containerd"),
    ("+", "/etc/cni/net.d"),
    (
        "+",
        "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db",
    ),
    // The Clusterfile's pre-init-host plugin.
    ("+", "/etc/fixture-plugin.env"),
    ("+", "/var/lib/fixture-plugin/ran"),
    // The agent's own: the rootfs copy and /etc/hosts.
    (
        "+",
        "/var/lib/sealer/data/{cluster}/rootfs/scripts/init-kube.sh",
    ),
    ("~", "/etc/hosts"),
];

/// The swap entry a host starts with; init-kube.sh comments it out.
const SWAP_LINE: &str = "/swap.img none swap sw 0 0";

/// A Clusterfile plugin run on every host before the container runtime: writes its own
/// file from the host's env and a state directory.
const PLUGIN: &str = "---
apiVersion: sealer.io/v1
kind: Plugin
metadata:
  name: node-env
spec:
  type: SHELL
  action: PreInitHost
  scope: master|node
  data: |
    printf 'NODE_IP=%s\\n' \"$HostIP\" > /etc/fixture-plugin.env
    mkdir -p /var/lib/fixture-plugin
    echo ran > /var/lib/fixture-plugin/ran
";

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn no_clean_rootfs() -> RootfsInfo {
    static INFO: OnceLock<RootfsInfo> = OnceLock::new();
    INFO.get_or_init(|| {
        let cache = testenv::cache::cache_dir();
        let info = testenv::fixture::build_no_clean_rootfs(
            &cache.join("e2e-rootfs-no-clean"),
            &cache.join("e2e-rootfs"),
        )
        .expect("building the fixture rootfs without clean scripts");
        for name in testenv::fixture::no_clean::CLEAN_SCRIPTS {
            assert!(
                !info.dir.join("scripts").join(name).exists(),
                "the no-clean rootfs has {name}"
            );
        }
        info
    })
    .clone()
}

/// Two hosts (master, node) on the no-clean rootfs, each with a swap entry in /etc/fstab,
/// the plugin in the Clusterfile; returns them with their pre-apply snapshots.
fn hosts() -> (Cluster, Vec<String>, Vec<Snapshot>) {
    let rootfs = no_clean_rootfs();
    let cluster = Cluster::up(UpOptions {
        nodes: 2,
        rootfs: Some(rootfs.dir.clone()),
        ..UpOptions::default()
    })
    .expect("bringing up 2 hosts");
    let path = cluster.clusterfile_path();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(PLUGIN);
    std::fs::write(&path, text).unwrap();
    let ips: Vec<String> = cluster.hosts().iter().map(|h| h.ip.to_string()).collect();
    for i in 0..ips.len() {
        sh(
            &cluster,
            i,
            &format!("printf '%s\\n' '{SWAP_LINE}' >> /etc/fstab"),
        );
    }
    let before = (0..ips.len())
        .map(|i| cluster.snapshot(i).unwrap())
        .collect();
    (cluster, ips, before)
}

fn apply_ok(cluster: &Cluster, ips: &[String]) -> Run {
    let run = installer(cluster, &["apply"]);
    assert_eq!(run.code, 0, "{}", run.describe());
    for ip in ips {
        assert_eq!(run.status(ip)["status"], "ok", "{ip}: {}", run.describe());
    }
    run
}

/// Asserts that every path of [`RESIDUE`] shows in host `i`'s diff from `before` (the
/// fixture did its work and the snapshot sees it), plus `extra`.
fn assert_residue(cluster: &Cluster, i: usize, before: &Snapshot, extra: &[(&str, &str)]) {
    let changes = testenv::hosts::diff(before, &cluster.snapshot(i).unwrap());
    let mut missing = Vec::new();
    for (kind, path) in RESIDUE.iter().chain(extra) {
        let path = path.replace("{cluster}", cluster.name());
        let found = changes.iter().any(|c| {
            c.path() == Path::new(&path)
                && match c {
                    Change::Added(..) => *kind == "+",
                    Change::Modified { .. } => *kind == "~",
                    Change::Removed(..) => false,
                }
        });
        if !found {
            missing.push(format!("{kind} {path}"));
        }
    }
    assert!(
        missing.is_empty(),
        "node{}: apply should have left these (the fixture or the snapshot is broken):\n{}\n\
         the diff was:\n{}",
        i + 1,
        missing.join("\n"),
        changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // /var/lib/containerd is a volume: the snapshot must see into it.
    assert!(
        changes
            .iter()
            .filter(|c| c.path().starts_with("/var/lib/containerd/"))
            .count()
            > 10,
        "node{}: the snapshot does not see containerd's state",
        i + 1
    );
    let fstab = sh(cluster, i, "cat /etc/fstab");
    assert!(fstab.contains(&format!("#{SWAP_LINE}")), "{fstab}");
}

/// One line per change, in path order, except that an added directory stands for
/// everything added below it (`… and N more below`).
fn compact(changes: &[Change]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    // The last added directory: its path, its line, how many entries below it were folded.
    let mut top: Option<(PathBuf, usize, usize)> = None;
    let fold = |lines: &mut Vec<String>, top: &Option<(PathBuf, usize, usize)>| {
        if let Some((_, line, n)) = top
            && *n > 0
        {
            lines[*line].push_str(&format!(" … and {n} more below"));
        }
    };
    for change in changes {
        if let (Change::Added(path, _), Some((dir, _, n))) = (change, top.as_mut())
            && path.starts_with(&*dir)
        {
            *n += 1;
            continue;
        }
        fold(&mut lines, &top);
        lines.push(change.to_string());
        top = match change {
            Change::Added(path, entry) if entry.kind == FileKind::Dir => {
                Some((path.clone(), lines.len() - 1, 0))
            }
            _ => None,
        };
    }
    fold(&mut lines, &top);
    lines
}

/// What is left on host `i` compared with `before`: changed paths (see [`compact`]), then
/// units and processes of ours, one per line; and the number of changed paths.
fn leftovers(cluster: &Cluster, i: usize, before: &Snapshot) -> (Vec<String>, usize) {
    let changes = testenv::hosts::diff(before, &cluster.snapshot(i).unwrap());
    let mut left = compact(&changes);
    let units = sh(
        cluster,
        i,
        &format!("systemctl list-units --all --no-legend --plain {UNITS}"),
    );
    left.extend(units.lines().map(|l| format!("unit: {}", l.trim())));
    let procs = sh(cluster, i, &format!("pgrep -l '{PROCS}' || true"));
    left.extend(procs.lines().map(|l| format!("process: {}", l.trim())));
    (left, changes.len())
}

/// Asserts every host is back as before: no path differs from its pre-apply snapshot, no
/// unit or process of ours is left. The message lists every host's residue (`+` left
/// behind, `~` not restored, `-` removed).
fn assert_hosts_as_before(cluster: &Cluster, before: &[Snapshot], after: &str) {
    let report = residue_report(cluster, before);
    assert!(
        report.is_empty(),
        "after {after}, hosts are not as before:\n{report}"
    );
    // The shared checks, for the record (they pass when the report is empty).
    for (i, snap) in before.iter().enumerate() {
        assert_as_before(cluster, i, snap);
        assert_nothing_left(cluster, i, UNITS, PROCS);
    }
}

fn residue_report(cluster: &Cluster, before: &[Snapshot]) -> String {
    let mut report = String::new();
    for (i, snap) in before.iter().enumerate() {
        let (left, paths) = leftovers(cluster, i, snap);
        if !left.is_empty() {
            let _ = writeln!(
                report,
                "node{} ({}): {paths} path(s) differ from before apply, {} unit(s)/process(es) left:\n  {}",
                i + 1,
                cluster.hosts()[i].ip,
                left.iter()
                    .filter(|l| l.starts_with("unit: ") || l.starts_with("process: "))
                    .count(),
                left.join("\n  ")
            );
        }
    }
    report
}

/// Asserts a clean run undid nothing but the agent it uploaded for itself.
fn assert_noop(run: &Run) {
    assert_eq!(run.code, 0, "{}", run.describe());
    for e in run.agent("undone", None) {
        assert!(
            e["what"]
                .as_str()
                .unwrap_or_default()
                .contains("installer-agent"),
            "a clean after a finished clean undid something: {e}"
        );
    }
    assert!(
        run.agent("not_undone", None).is_empty(),
        "{}",
        run.describe()
    );
}

#[test]
fn clean_without_clean_scripts_puts_hosts_back_after_apply() {
    let _serial = serial();
    let (cluster, ips, before) = hosts();

    let run = apply_ok(&cluster, &ips);
    for (i, ip) in ips.iter().enumerate() {
        let started = run.started(ip);
        for step in [
            "pre-init-host:node-env",
            "init-container-runtime",
            "init-kube",
        ] {
            assert!(started.contains(&step.to_string()), "{ip}: {started:?}");
        }
        for unit in ["containerd", "fixture-daemon"] {
            assert_eq!(
                sh(&cluster, i, &format!("systemctl is-active {unit}")).trim(),
                "active",
                "node{}",
                i + 1
            );
        }
        assert_eq!(
            sh(&cluster, i, "systemctl is-enabled kubelet").trim(),
            "enabled"
        );
        sh(&cluster, i, testenv::hosts::REGISTRY_ANSWERS_OVER_TLS);
        let settings = sh(&cluster, i, "cat /var/lib/fixture-daemon/data/settings");
        assert!(
            settings.contains(&format!("advertise_address={ip}")),
            "{settings}"
        );
        assert_residue(&cluster, i, &before[i], &[]);
    }
    // The stand-in pause image can be pulled from the registry on the node.
    sh(
        &cluster,
        1,
        &testenv::hosts::ctr_pull("e2e", &no_clean_rootfs().test_image),
    );

    let clean = installer(&cluster, &["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.describe());
    assert_hosts_as_before(&cluster, &before, "apply and clean");
    assert_noop(&installer(&cluster, &["clean"]));
}

#[test]
fn clean_puts_hosts_back_after_an_apply_that_failed_half_way() {
    let _serial = serial();
    let (cluster, ips, before) = hosts();
    // A user's preHook that does part of its work, then fails: after init-kube, so the
    // runtime, the kubelet unit and fixture-daemon are all in place.
    let overlay = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(overlay.path().join("scripts")).unwrap();
    std::fs::write(
        overlay.path().join("scripts/preHook.sh"),
        "#!/bin/sh\nset -eu\n\
         mkdir -p /root/.kube\n\
         printf 'apiVersion: v1\\nkind: Config\\n# for %s\\n' \"$HostIP\" > /root/.kube/config\n\
         printf 'Kubernetes node %s\\n' \"$HostIP\" >> /etc/motd\n\
         echo \"preHook: the load balancer for $HostIP does not answer\" >&2\n\
         exit 1\n",
    )
    .unwrap();
    let overlay_arg = overlay.path().display().to_string();

    let run = installer(&cluster, &["apply", "--overlay", &overlay_arg]);
    assert_eq!(run.code, 1, "{}", run.describe());
    for (i, ip) in ips.iter().enumerate() {
        let status = run.status(ip);
        assert_eq!(status["status"], "failed", "{ip}: {}", run.describe());
        assert_eq!(status["step"], "pre-hook", "{ip}: {status}");
        assert_residue(
            &cluster,
            i,
            &before[i],
            &[("+", "/root/.kube/config"), ("~", "/etc/motd")],
        );
    }

    let clean = installer(&cluster, &["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.describe());
    assert_hosts_as_before(&cluster, &before, "a failed apply and clean");
    assert_noop(&installer(&cluster, &["clean"]));
}

#[test]
fn a_clean_killed_half_way_is_finished_by_the_next_clean() {
    let _serial = serial();
    let (cluster, ips, before) = hosts();
    apply_ok(&cluster, &ips);
    // On node2, fixture-daemon takes 15 s to stop: the clean there is caught while it
    // waits for the daemon, after it began undoing and before it finished.
    sh(&cluster, 1, "touch /run/fixture-daemon/linger-on-stop");

    let mut child = installer_command(&cluster, &["clean"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let events = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .collect::<Vec<_>>()
    });
    let errors = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut killed = None;
    while killed.is_none() && child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "clean did not end in 300 s");
        let stopping = cluster
            .exec(1, &["test", "-e", "/run/fixture-daemon/stopping"])
            .unwrap();
        if stopping.success() {
            // No shell around pkill: its own command line would match the pattern.
            let out = cluster
                .exec(1, &["pkill", "-9", "-e", "-f", "installer-agent"])
                .unwrap();
            killed = Some(String::from_utf8_lossy(&out.stdout).to_string());
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let status = child.wait().unwrap();
    let events = events.join().unwrap();
    let stderr = errors.join().unwrap();
    let Some(killed) = killed else {
        let daemon = sh(
            &cluster,
            1,
            "systemctl is-active fixture-daemon.service || true; ls -la /run/fixture-daemon 2>&1 || true; \
             journalctl -u fixture-daemon.service --no-pager -n 20 2>&1 || true",
        );
        let node2_events: Vec<_> = events
            .iter()
            .filter(|e| e["host"] == ips[1].as_str())
            .map(|e| e.to_string())
            .collect();
        panic!(
            "clean ended ({status}) without stopping fixture-daemon.service on node2, so it \
             could not be killed half-way: clean does not stop the units the rootfs started.\n\
             What that clean left:\n{}\nstderr:\n{stderr}\nnode2's daemon after it:\n{daemon}\n\
             node2's events:\n{}",
            residue_report(&cluster, &before),
            node2_events.join("\n")
        );
    };
    eprintln!(
        "killed on node2 mid-clean: {}; that clean ended with {status}",
        killed.trim()
    );
    assert!(
        killed.contains("killed"),
        "pkill found no installer-agent on node2: {killed:?}"
    );
    assert_ne!(status.code(), Some(0), "{stderr}");
    let node2 = events
        .iter()
        .find(|e| e["type"] == "host_finished" && e["host"] == ips[1].as_str())
        .cloned()
        .unwrap_or_default();
    assert_ne!(node2["status"], "ok", "{node2}\n{stderr}");

    // The next clean finishes what the killed one began.
    let again = installer(&cluster, &["clean"]);
    assert_eq!(again.code, 0, "{}", again.describe());
    assert_hosts_as_before(
        &cluster,
        &before,
        "a clean killed half-way and a second clean",
    );
    // A third has nothing left to do.
    assert_noop(&installer(&cluster, &["clean"]));
    assert_hosts_as_before(&cluster, &before, "a third clean");
}
