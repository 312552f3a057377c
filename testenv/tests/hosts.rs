//! Real node containers: SSH, sudo, systemd, networking, snapshots, teardown, nested
//! container runtimes. These need a Docker engine and mmdebstrap (for the first build of
//! the node image) and fail with a message saying which is missing.

// The helpers below are test code too: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use testenv::hosts::{self, Change, Cluster, UpOptions, diff};

fn up(nodes: usize) -> Cluster {
    Cluster::up(UpOptions {
        nodes,
        ..UpOptions::default()
    })
    .unwrap_or_else(|e| panic!("bringing up {nodes} test node(s) failed: {e}"))
}

/// Runs `cmd` over SSH as `user` on node `index`, feeding `stdin`.
fn ssh(cluster: &Cluster, index: usize, user: &str, cmd: &str, stdin: &[u8]) -> Output {
    let mut child = cluster
        .ssh_command(index, user)
        .unwrap()
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the OpenSSH client (`ssh`) must be installed for these tests");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Whether an SSH login to node `index` fails within a second (the node is cut off or
/// down). The cluster's own ssh command waits longer before giving up.
fn ssh_unreachable(cluster: &Cluster, index: usize) -> bool {
    let out = Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(cluster.key_path())
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=1", "-o"])
        .arg(format!(
            "UserKnownHostsFile={}",
            cluster.known_hosts_path().display()
        ))
        .arg(format!("root@{}", cluster.hosts()[index].ip))
        .arg("true")
        .output()
        .unwrap();
    !out.status.success()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}): stdout {:?} stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn exec_ok(cluster: &Cluster, index: usize, argv: &[&str]) -> String {
    let out = cluster.exec(index, argv).unwrap();
    assert!(
        out.success(),
        "{argv:?} on node {index} failed ({:?}): {} {}",
        out.code,
        out.stdout_str(),
        out.stderr_str()
    );
    out.stdout_str().trim().to_owned()
}

/// Names of the Docker objects (`ps --all`, `network ls`, `volume ls`) carrying the
/// cluster's label.
fn labelled(list: &[&str], cluster: &str) -> Vec<String> {
    let filter = format!("label={}={cluster}", hosts::LABEL);
    let format = if list[0] == "ps" {
        "{{.Names}}"
    } else {
        "{{.Name}}"
    };
    let out = Command::new("docker")
        .args(list)
        .args(["--filter", &filter, "--format", format])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker {list:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn two_nodes_behave_like_hosts_and_leave_nothing_behind() {
    let cluster = up(2);
    let [n1, n2] = [&cluster.hosts()[0], &cluster.hosts()[1]];
    assert_eq!((n1.name.as_str(), n2.name.as_str()), ("node1", "node2"));
    assert_ne!(n1.ip, n2.ip);

    // Root by key, host key checked strictly against the generated known_hosts.
    assert_eq!(ok(&ssh(&cluster, 0, "root", "id -u", b"")), "0");
    assert_eq!(ok(&ssh(&cluster, 1, "root", "hostname", b"")), "node2");
    assert_eq!(ok(&ssh(&cluster, 0, "root", "hostname", b"")), "node1");
    // ... and the check is real: with an empty known_hosts the same login is refused.
    let empty = tempfile::NamedTempFile::new().unwrap();
    let refused = Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(cluster.key_path())
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
        ])
        .arg(format!("UserKnownHostsFile={}", empty.path().display()))
        .arg(format!("root@{}", n1.ip))
        .arg("true")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Host key verification failed"),
        "{refused:?}"
    );

    // ops: passwordless sudo. opspw: sudo wants the cluster's password, on stdin.
    assert_eq!(ok(&ssh(&cluster, 0, "ops", "sudo -n id -u", b"")), "0");
    assert!(
        !ssh(&cluster, 1, "opspw", "sudo -n true", b"")
            .status
            .success()
    );
    let password = format!("{}\n", cluster.password());
    assert_eq!(
        ok(&ssh(
            &cluster,
            1,
            "opspw",
            "sudo -S -p '' id -u",
            password.as_bytes()
        )),
        "0"
    );
    assert!(
        !ssh(
            &cluster,
            1,
            "opspw",
            "sudo -S -p '' true",
            b"wrong-password\n"
        )
        .status
        .success()
    );
    assert_eq!(
        std::fs::read_to_string(cluster.password_path()).unwrap(),
        cluster.password()
    );

    // systemd is PID 1 and finished booting cleanly.
    assert_eq!(
        exec_ok(&cluster, 0, &["systemctl", "is-system-running"]),
        "running"
    );
    assert_eq!(
        exec_ok(&cluster, 1, &["ps", "-o", "comm=", "-p", "1"]),
        "systemd"
    );

    // The nodes reach each other; node1's disk is its own.
    let ip2 = n2.ip.to_string();
    exec_ok(&cluster, 0, &["ping", "-c", "1", "-W", "2", &ip2]);
    let ssh_port = format!("exec 3<>/dev/tcp/{ip2}/22 && head -c 7 <&3");
    assert_eq!(exec_ok(&cluster, 0, &["bash", "-c", &ssh_port]), "SSH-2.0");
    exec_ok(&cluster, 0, &["touch", "/root/only-on-node1"]);
    assert!(
        !cluster
            .exec(1, &["test", "-e", "/root/only-on-node1"])
            .unwrap()
            .success()
    );

    // Cut node2 off: no SSH to it, node1 cannot reach it. Plug it back: both work again.
    cluster.disconnect(1).unwrap();
    assert!(
        ssh_unreachable(&cluster, 1),
        "ssh reached a disconnected node"
    );
    assert!(
        !cluster
            .exec(0, &["ping", "-c", "1", "-W", "1", &ip2])
            .unwrap()
            .success()
    );
    cluster.reconnect(1).unwrap();
    assert_eq!(ok(&ssh(&cluster, 1, "root", "hostname", b"")), "node2");
    exec_ok(&cluster, 0, &["ping", "-c", "1", "-W", "2", &ip2]);

    // Snapshots: identical without changes; a new file under /etc is the only difference.
    let before = cluster.snapshot(0).unwrap();
    assert!(
        before.len() > 1000,
        "suspiciously small snapshot: {}",
        before.len()
    );
    assert!(before.contains_key(Path::new("/etc/ssh/sshd_config")));
    assert!(before.contains_key(Path::new("/usr/bin/bash")));
    let again = cluster.snapshot(0).unwrap();
    let changes = diff(&before, &again);
    assert!(
        changes.is_empty(),
        "no-op changed the snapshot: {changes:#?}"
    );
    ok(&ssh(
        &cluster,
        0,
        "root",
        "echo marker > /etc/testenv-marker",
        b"",
    ));
    let after = cluster.snapshot(0).unwrap();
    let changes = diff(&before, &after);
    let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(changes.len(), 1, "{shown:#?}");
    assert!(
        matches!(&changes[0], Change::Added(path, entry)
            if path == Path::new("/etc/testenv-marker") && entry.sha256.is_some()),
        "{shown:#?}"
    );

    // Dropping removes the containers, network, volumes and the files it wrote.
    let name = cluster.name().to_owned();
    let workdir = cluster.workdir().to_owned();
    assert_eq!(labelled(&["ps", "--all"], &name).len(), 2);
    assert_eq!(labelled(&["network", "ls"], &name).len(), 1);
    assert_eq!(labelled(&["volume", "ls"], &name).len(), 2);
    drop(cluster);
    assert_eq!(labelled(&["ps", "--all"], &name), Vec::<String>::new());
    assert_eq!(labelled(&["network", "ls"], &name), Vec::<String>::new());
    assert_eq!(labelled(&["volume", "ls"], &name), Vec::<String>::new());
    assert!(!workdir.exists(), "{} is still there", workdir.display());
}

#[test]
fn clusterfile_and_known_hosts_describe_the_nodes() {
    let rootfs = tempfile::tempdir().unwrap();
    let cluster = Cluster::up(UpOptions {
        nodes: 3,
        rootfs: Some(rootfs.path().to_owned()),
        ..UpOptions::default()
    })
    .unwrap_or_else(|e| panic!("bringing up 3 test nodes failed: {e}"));
    let ips: Vec<String> = cluster.hosts().iter().map(|h| h.ip.to_string()).collect();

    let clusterfile = std::fs::read_to_string(cluster.clusterfile_path()).unwrap();
    let expected_hosts = format!(
        "  hosts:\n    - ips: [\"{}\"]\n      roles: [master]\n    - ips: [\"{}\", \"{}\"]\n      roles: [node]\n",
        ips[0], ips[1], ips[2]
    );
    assert!(clusterfile.contains(&expected_hosts), "{clusterfile}");
    assert!(
        clusterfile.contains(&format!("  name: \"{}\"\n", cluster.name())),
        "{clusterfile}"
    );
    assert!(
        clusterfile.contains(&format!("  image: \"{}\"\n", rootfs.path().display())),
        "{clusterfile}"
    );
    assert!(
        clusterfile.contains(&format!("    pk: \"{}\"\n", cluster.key_path().display())),
        "{clusterfile}"
    );

    // known_hosts holds each node's own host keys, as the node has them.
    let known_hosts = std::fs::read_to_string(cluster.known_hosts_path()).unwrap();
    for (i, ip) in ips.iter().enumerate() {
        let on_node = exec_ok(&cluster, i, &["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
        let key: Vec<&str> = on_node.split_whitespace().take(2).collect();
        assert!(
            known_hosts.contains(&format!("{ip} {} {}\n", key[0], key[1])),
            "{ip}: {known_hosts}"
        );
    }
    let distinct: BTreeSet<&str> = known_hosts
        .lines()
        .filter(|l| l.contains("ssh-ed25519"))
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(distinct.len(), 3, "nodes share host keys: {known_hosts}");
    let machine_ids: BTreeSet<String> = (0..3)
        .map(|i| exec_ok(&cluster, i, &["cat", "/etc/machine-id"]))
        .collect();
    assert_eq!(machine_ids.len(), 3, "nodes share a machine-id");
}

#[test]
fn a_restarted_node_keeps_its_state() {
    let cluster = up(1);
    // /etc/hosts is a plain file the node may replace by rename, as tools do on hosts.
    ok(&ssh(
        &cluster,
        0,
        "root",
        "cp /etc/hosts /etc/hosts.new && echo '10.9.9.9 sea.hub' >> /etc/hosts.new && mv /etc/hosts.new /etc/hosts",
        b"",
    ));
    let before = cluster.snapshot(0).unwrap();
    cluster.stop(0).unwrap();
    assert!(ssh_unreachable(&cluster, 0), "ssh reached a stopped node");
    cluster.start(0).unwrap();
    // Same host keys (ssh checks them strictly), same files, same edits.
    let hosts = ok(&ssh(&cluster, 0, "root", "cat /etc/hosts", b""));
    assert!(hosts.contains("10.9.9.9 sea.hub"), "{hosts}");
    let after = cluster.snapshot(0).unwrap();
    let changes: Vec<String> = diff(&before, &after)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        changes.is_empty(),
        "a reboot changed the snapshot: {changes:#?}"
    );
}

/// Debian's containerd and runc binaries, from the package files (no installation on
/// this machine), cached between runs.
fn runtime_binaries() -> PathBuf {
    let dir = testenv::cache::cache_dir().join("test-nested-runtime");
    let bin = dir.join("bin");
    let names = ["containerd", "containerd-shim-runc-v2", "ctr", "runc"];
    if names.iter().all(|n| bin.join(n).exists()) {
        return bin;
    }
    let work = tempfile::tempdir_in({
        std::fs::create_dir_all(&dir).unwrap();
        &dir
    })
    .unwrap();
    let download = Command::new("apt-get")
        .args(["download", "containerd", "runc"])
        .current_dir(work.path())
        .output()
        .expect("this test needs apt-get (Debian) to fetch containerd and runc");
    assert!(
        download.status.success(),
        "`apt-get download containerd runc` failed (run `apt-get update`?): {}",
        String::from_utf8_lossy(&download.stderr)
    );
    let tree = work.path().join("tree");
    for deb in std::fs::read_dir(work.path()).unwrap() {
        let deb = deb.unwrap().path();
        if deb.extension().is_some_and(|e| e == "deb") {
            let status = Command::new("dpkg")
                .arg("-x")
                .arg(&deb)
                .arg(&tree)
                .status()
                .unwrap();
            assert!(status.success(), "dpkg -x {}", deb.display());
        }
    }
    let staged = work.path().join("bin");
    std::fs::create_dir_all(&staged).unwrap();
    for name in names {
        let from = ["usr/bin", "usr/sbin"]
            .iter()
            .map(|d| tree.join(d).join(name))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{name} not found in the packages"));
        std::fs::copy(&from, staged.join(name)).unwrap();
    }
    // Another test process may have finished first; either copy is good.
    let _ = std::fs::rename(&staged, &bin);
    bin
}

/// Starts containerd as a systemd unit, then a container named `$2` whose root is a bind
/// mount of the node's /usr, sleeping `$1` seconds (which tells the nodes' containers
/// apart).
const NESTED_RUN: &str = r#"set -eu
systemd-run --quiet --unit=containerd --property=Delegate=yes --property=KillMode=process /usr/local/bin/containerd
i=0
until ctr version >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -lt 100 ] || { journalctl -u containerd --no-pager | tail -20; exit 1; }
    sleep 0.1
done
mkdir -p /var/lib/probe/usr
mount --bind /usr /var/lib/probe/usr
ln -sfn usr/bin /var/lib/probe/bin
ln -sfn usr/lib /var/lib/probe/lib
ln -sfn usr/lib64 /var/lib/probe/lib64
ctr run -d --rootfs /var/lib/probe "$2" /usr/bin/sleep "$1"
"#;

/// containerd's overlayfs snapshotter stacks an overlay on /var/lib/containerd.
const OVERLAY_SNAPSHOT: &str = r#"set -eu
ctr snapshots prepare base-rw ""
ctr snapshots commit base base-rw
ctr snapshots prepare top base
mkdir -p /mnt/top
eval "$(ctr snapshots mounts /mnt/top top)"
echo written > /mnt/top/file
cat /mnt/top/file
umount /mnt/top
"#;

/// This machine's cgroup mounts and what is at the top of /sys/fs/cgroup: nodes must not
/// change them (systemd in a node given the host's /sys/fs/cgroup read-write remounts it
/// read-only and adds directories to it).
fn host_cgroup_state() -> String {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut state: Vec<String> = mounts
        .lines()
        .filter(|l| l.contains(" /sys/fs/cgroup"))
        .map(|l| l.split_whitespace().skip(4).collect::<Vec<_>>().join(" "))
        .collect();
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap() {
        state.push(entry.unwrap().file_name().to_string_lossy().into_owned());
    }
    state.sort();
    state.join("\n")
}

/// The pids-controller cgroup of a node container on this machine (its systemd's cgroup,
/// without `init.scope`).
fn node_pids_cgroup(container: &str) -> PathBuf {
    let out = Command::new("docker")
        .args(["inspect", "--format", "{{.State.Pid}}", container])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = cgroups
        .lines()
        .find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_owned()))
        .unwrap_or_else(|| panic!("no pids cgroup for {container}: {cgroups}"));
    let path = path.trim_end_matches("/init.scope");
    Path::new("/sys/fs/cgroup/pids").join(path.trim_start_matches('/'))
}

#[test]
fn nested_runtimes_of_two_nodes_get_their_own_cgroups() {
    let bin = runtime_binaries();
    let host_before = host_cgroup_state();
    let cluster = up(2);
    // The same container id in both nodes, unique to this run (so the global hierarchy
    // check below cannot trip over anything else).
    let id = format!("probe-{}", cluster.name());
    std::thread::scope(|scope| {
        for (i, host) in cluster.hosts().iter().enumerate() {
            let (bin, cluster, id) = (&bin, &cluster, &id);
            scope.spawn(move || {
                let status = Command::new("docker")
                    .arg("cp")
                    .arg(format!("{}/.", bin.display()))
                    .arg(format!("{}:/usr/local/bin/", host.container))
                    .status()
                    .unwrap();
                assert!(status.success(), "docker cp to {}", host.container);
                let seconds = format!("{}", 1000 + i);
                let out = cluster
                    .exec(i, &["sh", "-c", NESTED_RUN, "sh", &seconds, id])
                    .unwrap();
                assert!(
                    out.success(),
                    "node {i}: {} {}",
                    out.stdout_str(),
                    out.stderr_str()
                );
            });
        }
    });

    // Both containers run at once, under the same containerd cgroup path (/default/<id>)
    // in each node. Each node's cgroup holds exactly its own container: pids.current
    // counts tasks whatever pid namespace they are in, so a cgroup shared between the
    // nodes would count 2.
    for i in 0..2 {
        let tasks = exec_ok(&cluster, i, &["ctr", "task", "ls"]);
        assert!(tasks.contains(&id) && tasks.contains("RUNNING"), "{tasks}");
        let cgroup = format!("/sys/fs/cgroup/pids/default/{id}");
        assert_eq!(
            exec_ok(&cluster, i, &["cat", &format!("{cgroup}/pids.current")]),
            "1"
        );
        let pid = exec_ok(&cluster, i, &["cat", &format!("{cgroup}/cgroup.procs")]);
        let cmdline = exec_ok(&cluster, i, &["cat", &format!("/proc/{pid}/cmdline")]);
        assert_eq!(
            cmdline.trim_end_matches('\0'),
            format!("/usr/bin/sleep\0{}", 1000 + i)
        );
    }
    // Stopping one node's container leaves the other's alone.
    exec_ok(
        &cluster,
        0,
        &["ctr", "task", "kill", "--signal", "KILL", &id],
    );
    let mut left = String::new();
    for _ in 0..50 {
        left = exec_ok(&cluster, 0, &["ctr", "task", "ls"]);
        if left.contains("STOPPED") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(left.contains("STOPPED"), "{left}");
    let other = exec_ok(&cluster, 1, &["ctr", "task", "ls"]);
    assert!(other.contains("RUNNING"), "{other}");

    // And the overlayfs snapshotter works on the node's /var/lib/containerd volume.
    assert_eq!(
        exec_ok(&cluster, 1, &["sh", "-c", OVERLAY_SNAPSHOT]),
        "written"
    );

    // Seen from this machine, the nested cgroups sit below each node's own cgroup, the
    // global hierarchy is untouched, and removing the cluster removes them all (the
    // container in node2 is still running at that point).
    let node_cgroups: Vec<PathBuf> = cluster
        .hosts()
        .iter()
        .map(|h| node_pids_cgroup(&h.container))
        .collect();
    assert!(node_cgroups[1].join("default").join(&id).is_dir());
    assert!(!Path::new("/sys/fs/cgroup/pids/default").join(&id).exists());
    drop(cluster);
    for cgroup in &node_cgroups {
        assert!(!cgroup.exists(), "{} was left behind", cgroup.display());
    }
    assert_eq!(host_cgroup_state(), host_before);
}

#[test]
fn bad_requests_are_refused_before_anything_starts() {
    let err = Cluster::up(UpOptions {
        nodes: 0,
        ..UpOptions::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("invalid node count 0"), "{err}");
    let err = Cluster::up(UpOptions {
        nodes: 1,
        name: Some("Bad_Name".into()),
        ..UpOptions::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("invalid cluster name \"Bad_Name\""), "{err}");
    let err = hosts::down("../etc").unwrap_err().to_string();
    assert!(err.contains("invalid cluster name"), "{err}");
}

#[test]
fn command_line_up_keeps_the_cluster_until_down() {
    let name = format!("cli{}", std::process::id());
    let workdir = tempfile::tempdir().unwrap();
    let up = assert_cmd::Command::cargo_bin("testenv")
        .unwrap()
        .args(["up", "-n", "1", "--name", &name, "--workdir"])
        .arg(workdir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(
        up.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let clusterfile = workdir.path().join("Clusterfile");
    assert!(
        stdout.contains(&format!("Clusterfile:        {}", clusterfile.display())),
        "{stdout}"
    );
    assert!(clusterfile.exists());
    // The process has exited; the node is still there.
    assert_eq!(labelled(&["ps", "--all"], &name).len(), 1);

    let down = assert_cmd::Command::cargo_bin("testenv")
        .unwrap()
        .args(["down", "--name", &name])
        .output()
        .unwrap();
    assert!(down.status.success(), "{down:?}");
    assert_eq!(
        String::from_utf8_lossy(&down.stdout).trim(),
        "removed 1 container(s), 1 network(s), 0 volume(s), 5 file(s)"
    );
    assert_eq!(labelled(&["ps", "--all"], &name), Vec::<String>::new());
    assert_eq!(labelled(&["network", "ls"], &name), Vec::<String>::new());
    assert!(!clusterfile.exists());
}
