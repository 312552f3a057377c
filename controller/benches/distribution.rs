//! Distribution benchmark: `installer apply` against the ways people ship a rootfs by hand,
//! side by side in one run, on testenv hosts behind a shaped link.
//!
//! It brings up `BENCH_HOSTS` systemd+sshd hosts (default 4; the first `BENCH_MASTERS` are
//! masters and so registry hosts, default all), shapes the controller→hosts link to
//! `BENCH_RATE` (default `200mbit`) with `tc` on the cluster's bridge, and times, in order:
//!
//! 1. `installer apply` (first), its no-op re-apply, and a re-apply after one 1 MiB file
//!    changed (with the controller's peak RSS);
//! 2. `tar | zstd -3 -T0` once, then `ssh host 'zstd -d | tar x'` to every host in parallel,
//!    each host sent what it needs (`registry/` to registry hosts only);
//! 3. `rsync -a` to every host in parallel, and its no-op run;
//! 4. sending the changed 1 MiB file alone to every host.
//!
//! and prints the times and ratios. `BENCH_ROOTFS` names a rootfs directory (default: the
//! realistic fixture). `BENCH_SCALE=1` runs the memory run instead: apply, no-op and clean
//! with the agents in preview mode (no runtime or unit started), reporting peak RSS. Run (as root, Docker running, after `scripts/build-agent.sh`):
//! `cargo bench -p installer --features real-hosts --bench distribution`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testenv::hosts::{Cluster, UpOptions};

fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `cmd` to success; panics with its output otherwise.
fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The wall time of running every command at once.
fn parallel(cmds: Vec<Command>) -> Duration {
    let t = Instant::now();
    let children: Vec<_> = cmds
        .into_iter()
        .map(|mut c| (format!("{c:?}"), c.stdout(Stdio::null()).spawn().unwrap()))
        .collect();
    for (what, mut child) in children {
        assert!(child.wait().unwrap().success(), "{what}");
    }
    t.elapsed()
}

/// Shapes egress of the cluster's bridge (the controller's traffic to the hosts) for as
/// long as it lives.
struct Shaped(String);

impl Shaped {
    fn new(cluster: &Cluster, rate: &str) -> Shaped {
        let id = Command::new("docker")
            .args(["network", "inspect", "-f", "{{.Id}}", cluster.network()])
            .output()
            .unwrap();
        let id = String::from_utf8_lossy(&id.stdout).trim().to_string();
        let dev = format!("br-{}", &id[..12]);
        run(Command::new("tc").args([
            "qdisc", "replace", "dev", &dev, "root", "tbf", "rate", rate, "burst", "256kb",
            "latency", "400ms",
        ]));
        Shaped(dev)
    }
}

impl Drop for Shaped {
    fn drop(&mut self) {
        let _ = Command::new("tc")
            .args(["qdisc", "del", "dev", &self.0, "root"])
            .status();
    }
}

/// The controller: apply or clean, with the cluster's files; its time, its peak RSS and its
/// NDJSON events.
fn installer(
    cluster: &Cluster,
    agents: &Path,
    args: &[&str],
) -> (Duration, u64, Vec<serde_json::Value>) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_installer"))
        .args(args)
        .arg("-f")
        .arg(cluster.clusterfile_path())
        .arg("--known-hosts")
        .arg(cluster.known_hosts_path())
        .arg("--agent-dir")
        .arg(agents)
        .args(["-o", "json"])
        .env("HOME", cluster.workdir())
        .output()
        .unwrap();
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "installer {args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The largest child waited for so far: the controller runs first, so it is this one.
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (took, usage.max_rss() as u64 / 1024, events)
}

/// Seconds from the run's start to the last event of `ty` (any host) that `keep` keeps,
/// from the events' `ts_ms`.
fn at_when(
    events: &[serde_json::Value],
    ty: &str,
    keep: impl Fn(&serde_json::Value) -> bool,
) -> f64 {
    let start = events
        .first()
        .and_then(|e| e["ts_ms"].as_f64())
        .unwrap_or(0.0);
    let last = events
        .iter()
        .filter(|e| e["type"] == ty && keep(e))
        .filter_map(|e| e["ts_ms"].as_f64())
        .fold(start, f64::max);
    (last - start) / 1000.0
}

/// [`at_when`] for every event of `ty`.
fn at(events: &[serde_json::Value], ty: &str) -> f64 {
    at_when(events, ty, |_| true)
}

/// Sum of field `field` over the events of `ty`.
fn total(events: &[serde_json::Value], ty: &str, field: &str) -> u64 {
    events
        .iter()
        .filter(|e| e["type"] == ty)
        .filter_map(|e| e[field].as_u64())
        .sum()
}

/// Each step's longest run over the hosts, in the order steps first started.
fn step_times(events: &[serde_json::Value]) -> Vec<(String, f64)> {
    let mut started = std::collections::HashMap::new();
    let mut longest: Vec<(String, f64)> = Vec::new();
    for e in events.iter().filter(|e| e["type"] == "agent") {
        let (Some(step), Some(ts)) = (e["step"].as_str(), e["ts_ms"].as_f64()) else {
            continue;
        };
        let key = (e["host"].to_string(), step.to_string());
        match e["event"].as_str() {
            Some("step_started") => {
                started.insert(key, ts);
                if !longest.iter().any(|(s, _)| s == step) {
                    longest.push((step.to_string(), 0.0));
                }
            }
            Some("step_done") => {
                if let (Some(t0), Some(entry)) = (
                    started.get(&key),
                    longest.iter_mut().find(|(s, _)| s == step),
                ) {
                    entry.1 = entry.1.max((ts - t0) / 1000.0);
                }
            }
            _ => {}
        }
    }
    longest
}

/// When each phase first started, in seconds from the run's start, in order.
fn phase_starts(events: &[serde_json::Value]) -> Vec<(String, f64)> {
    let start = events
        .first()
        .and_then(|e| e["ts_ms"].as_f64())
        .unwrap_or(0.0);
    let mut out: Vec<(String, f64)> = Vec::new();
    for e in events.iter().filter(|e| e["type"] == "phase_started") {
        let (Some(phase), Some(ts)) = (e["phase"].as_str(), e["ts_ms"].as_f64()) else {
            continue;
        };
        if !out.iter().any(|(p, _)| p == phase) {
            out.push((phase.to_string(), (ts - start) / 1000.0));
        }
    }
    if let Some(end) = events.last().and_then(|e| e["ts_ms"].as_f64()) {
        out.push(("end".into(), (end - start) / 1000.0));
    }
    out
}

/// The largest agent peak RSS the hosts reported, MiB.
fn agent_rss(events: &[serde_json::Value]) -> u64 {
    events
        .iter()
        .filter(|e| e["type"] == "host_finished")
        .filter_map(|e| e["agent_peak_rss_kib"].as_u64())
        .max()
        .unwrap_or(0)
        / 1024
}

/// The bytes the controller put on the wire, all hosts.
fn wire_bytes(events: &[serde_json::Value]) -> u64 {
    events
        .iter()
        .filter(|e| e["type"] == "transfer_done")
        .filter_map(|e| e["bytes_sent"].as_u64())
        .sum()
}

fn ssh(cluster: &Cluster, i: usize, remote: &str) -> Command {
    let mut c = cluster.ssh_command(i, "root").unwrap();
    c.arg(remote);
    c
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn main() {
    let hosts: usize = var("BENCH_HOSTS", 4);
    let masters: usize = var("BENCH_MASTERS", hosts).clamp(1, hosts);
    let rate: String = var("BENCH_RATE", "200mbit".to_string());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let agents: PathBuf = std::env::var_os("INSTALLER_AGENT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target/agents"));
    let rootfs = match std::env::var_os("BENCH_ROOTFS") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let out = testenv::cache::cache_dir().join("e2e-rootfs");
            testenv::fixture::build_rootfs(&out, &Default::default())
                .unwrap()
                .dir
        }
    };
    let (bytes, files) = walk_size(&rootfs);
    eprintln!(
        "rootfs {} ({:.1} MB, {files} files); {hosts} hosts, {masters} registry host(s), link {rate}",
        rootfs.display(),
        bytes as f64 / 1e6
    );

    raise_inotify_limit(hosts);
    let t = Instant::now();
    let cluster = Cluster::up(UpOptions {
        nodes: hosts,
        rootfs: Some(rootfs.clone()),
        ..UpOptions::default()
    })
    .unwrap();
    eprintln!("{hosts} hosts up in {:.0} s", secs(t.elapsed()));
    let ips: Vec<String> = cluster.hosts().iter().map(|h| h.ip.to_string()).collect();
    write_clusterfile(&cluster, &ips, masters);
    if std::env::var_os("BENCH_SCALE").is_some() {
        return scale(&cluster, &agents, hosts);
    }
    // A 1 MiB file in an overlay, changed before the third apply.
    let overlay = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(overlay.path().join("statics")).unwrap();
    // Under statics/, which no script names: the change re-runs no step.
    let one_mib = overlay.path().join("statics/bench-1mib.bin");
    std::fs::write(&one_mib, random_bytes(1 << 20, 1)).unwrap();
    let overlay_arg = overlay.path().to_string_lossy().to_string();
    // The rootfs read once, so every contender finds it in the page cache.
    run(Command::new("sh")
        .arg("-c")
        .arg("tar -C \"$1\" -cf - . >/dev/null")
        .args(["warm", &rootfs.to_string_lossy()]));

    let shaped = Shaped::new(&cluster, &rate);
    let apply = ["apply", "--overlay", &overlay_arg];
    let (first, rss, events) = installer(&cluster, &agents, &apply);
    let (noop, _, noop_events) = installer(&cluster, &agents, &apply);
    std::fs::write(&one_mib, random_bytes(1 << 20, 2)).unwrap();
    let (changed, _, _) = installer(&cluster, &agents, &apply);

    // The stream: compressed once, each host sent what it needs.
    let scratch = tempfile::tempdir().unwrap();
    let full = scratch.path().join("full.tar.zst");
    let lean = scratch.path().join("lean.tar.zst");
    let t = Instant::now();
    for (out, exclude) in [(&full, ""), (&lean, "--exclude=./registry")] {
        run(Command::new("sh")
            .arg("-c")
            .arg("tar -C \"$1\" $3 -cf - . | zstd -3 -T0 -q -o \"$2\"")
            .args([
                "stream",
                &rootfs.to_string_lossy(),
                &out.to_string_lossy(),
                exclude,
            ]));
    }
    let compress = t.elapsed();
    let sends: Vec<Command> = (0..hosts)
        .map(|i| {
            let mut c = ssh(
                &cluster,
                i,
                "mkdir -p /tmp/bench-stream && zstd -dq | tar -x -C /tmp/bench-stream",
            );
            let file = if i < masters { &full } else { &lean };
            c.stdin(std::fs::File::open(file).unwrap());
            c
        })
        .collect();
    let stream = compress + parallel(sends);

    let rsyncs = |_: ()| -> Vec<Command> {
        (0..hosts)
            .map(|i| {
                let mut c = Command::new("rsync");
                c.args(["-a", "-e"]).arg(format!(
                    "ssh -F /dev/null -i {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
                    cluster.key_path().display(),
                    cluster.known_hosts_path().display()
                ));
                if i >= masters {
                    c.arg("--exclude=/registry");
                }
                c.arg(format!("{}/", rootfs.display()))
                    .arg(format!("root@{}:/tmp/bench-rsync/", ips[i]));
                c
            })
            .collect()
    };
    let rsync = parallel(rsyncs(()));
    let rsync_noop = parallel(rsyncs(()));
    let alone = parallel(
        (0..hosts)
            .map(|i| {
                let mut c = ssh(&cluster, i, "cat > /tmp/bench-one");
                c.stdin(std::fs::File::open(&one_mib).unwrap());
                c
            })
            .collect(),
    );
    drop(shaped);
    let _ = installer(&cluster, &agents, &["clean"]);
    let stream_bytes = std::fs::metadata(&full).unwrap().len() * masters as u64
        + std::fs::metadata(&lean).unwrap().len() * (hosts - masters) as u64;

    println!("| {hosts} hosts, {masters} registry, {rate} | time (s) | ratio |");
    println!("|---|---|---|");
    println!(
        "| `tar | zstd -3 -T0` once, then `ssh 'zstd -d | tar x'` to each host in parallel | {:.2} | 1.00 |",
        secs(stream)
    );
    println!(
        "| `rsync -a` to each host in parallel | {:.2} | {:.2} |",
        secs(rsync),
        secs(rsync) / secs(stream)
    );
    println!(
        "| `installer apply` (first) | {:.2} | {:.2} |",
        secs(first),
        secs(first) / secs(stream)
    );
    println!(
        "| `installer apply` again, nothing changed | {:.2} | {:.2}× rsync's no-op ({:.2} s) |",
        secs(noop),
        secs(noop) / secs(rsync_noop),
        secs(rsync_noop)
    );
    println!(
        "| one changed 1 MiB file | {:.2} | no-op + {:.2}× sending it alone ({:.2} s) |",
        secs(changed),
        (secs(changed) - secs(noop)) / secs(alone),
        secs(alone)
    );
    println!("| controller peak RSS, first apply | {rss} MiB | |");
    println!(
        "| agent peak RSS, first apply (largest host) | {} MiB | |",
        agent_rss(&events)
    );
    println!();
    let first_step = {
        let start = events
            .first()
            .and_then(|e| e["ts_ms"].as_f64())
            .unwrap_or(0.0);
        events
            .iter()
            .filter(|e| e["type"] == "agent" && e["event"] == "step_started")
            .filter_map(|e| e["ts_ms"].as_f64())
            .fold(f64::MAX, f64::min)
            .max(start)
            - start
    } / 1000.0;
    println!(
        "first apply: first step started at {first_step:.2} s, last byte sent at {:.2} s, last host finished at {:.2} s; on the wire {:.1} MB (the stream: {:.1} MB)",
        at_when(&events, "transfer", |e| e["bytes_sent"] == e["bytes_total"]),
        at(&events, "host_finished"),
        wire_bytes(&events) as f64 / 1e6,
        stream_bytes as f64 / 1e6
    );
    if !events.iter().any(|e| e["type"] == "fetched") {
        println!("fan-out: not used (every host is a registry host)");
    } else {
        println!(
            "fan-out: {} blob(s), {:.1} MB pushed into the registry by {:.2} s; {} file(s), {:.1} MB fetched by the other hosts by {:.2} s, {} left to the controller",
            total(&events, "published", "pushed"),
            total(&events, "published", "bytes") as f64 / 1e6,
            at(&events, "published"),
            total(&events, "fetched", "files"),
            total(&events, "fetched", "bytes") as f64 / 1e6,
            at(&events, "fetched"),
            total(&events, "fetched", "left"),
        );
    }
    let steps: Vec<String> = step_times(&events)
        .iter()
        .map(|(step, secs)| format!("{step} {secs:.2}"))
        .collect();
    println!(
        "first apply, longest run of each step (s): {}",
        steps.join(", ")
    );
    let phases: Vec<String> = phase_starts(&noop_events)
        .iter()
        .map(|(phase, at)| format!("{phase} {at:.2}"))
        .collect();
    println!(
        "no-op re-apply, when each phase first started (s): {}",
        phases.join(", ")
    );
}

/// The memory run (`BENCH_SCALE=1`): apply, its no-op and clean on every host with the
/// agents in preview mode (`--agent-root`: the agent writes under a directory of the host
/// and starts no container or unit), so that many light hosts can take part; the link is
/// not shaped and no baseline runs. Prints the controller's and the agents' peak RSS.
fn scale(cluster: &Cluster, agents: &Path, hosts: usize) {
    let root = ["--agent-root", "/var/tmp/installer-bench"];
    let apply = [&["apply"][..], &root[..]].concat();
    let (first, rss, events) = installer(cluster, agents, &apply);
    let ok = events
        .iter()
        .filter(|e| e["type"] == "host_finished" && e["status"] == "ok")
        .count();
    assert_eq!(ok, hosts, "every host ends ok");
    let (noop, noop_rss, noop_events) = installer(cluster, agents, &apply);
    let clean = [&["clean"][..], &root[..]].concat();
    let (cleaned, _, _) = installer(cluster, agents, &clean);
    println!("| {hosts} hosts, preview mode, link not shaped | time (s) | peak RSS |");
    println!("|---|---|---|");
    println!(
        "| `installer apply` (first) | {:.2} | controller {rss} MiB, agents up to {} MiB |",
        secs(first),
        agent_rss(&events)
    );
    // getrusage keeps the largest child so far: the no-op's own peak is at most this.
    println!(
        "| `installer apply` again, nothing changed | {:.2} | controller ≤ {noop_rss} MiB, agents up to {} MiB |",
        secs(noop),
        agent_rss(&noop_events)
    );
    println!("| `installer clean` | {:.2} | |", secs(cleaned));
    println!();
    println!(
        "first apply: on the wire {:.1} MB; {} host(s) fetched from the registry, {} warning(s)",
        wire_bytes(&events) as f64 / 1e6,
        events.iter().filter(|e| e["type"] == "fetched").count(),
        events.iter().filter(|e| e["type"] == "warning").count(),
    );
}

/// Every systemd host takes inotify instances of the one kernel user they all run as; past a
/// few dozen hosts the default limit (128) leaves systemd hanging at boot. Raised (as root,
/// like the link shaping) when lower than these hosts need, and said so.
fn raise_inotify_limit(hosts: usize) {
    let path = "/proc/sys/fs/inotify/max_user_instances";
    let want = 128 + 16 * hosts as u64;
    let have: u64 = std::fs::read_to_string(path)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if have < want {
        std::fs::write(path, want.to_string()).unwrap();
        eprintln!("raised fs.inotify.max_user_instances from {have} to {want} for {hosts} hosts");
    }
}

/// Bytes and files under `dir`.
fn walk_size(dir: &Path) -> (u64, u64) {
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        if meta.is_dir() {
            let (b, f) = walk_size(&entry.path());
            total = (total.0 + b, total.1 + f);
        } else if meta.is_file() {
            total = (total.0 + meta.len(), total.1 + 1);
        }
    }
    total
}

/// `len` bytes that do not compress, different for each `seed`.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The Clusterfile testenv wrote, with the first `masters` hosts as masters (each a
/// registry host: `ha` is on by default) and the rest as nodes.
fn write_clusterfile(cluster: &Cluster, ips: &[String], masters: usize) {
    let path = cluster.clusterfile_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let head = text.split("  hosts:\n").next().unwrap().to_string();
    let tail = text.split("  containerRuntime:").nth(1).unwrap();
    let mut hosts = format!(
        "  hosts:\n    - ips: [{}]\n      roles: [master]\n",
        ips[..masters].join(", ")
    );
    if masters < ips.len() {
        hosts += &format!(
            "    - ips: [{}]\n      roles: [node]\n",
            ips[masters..].join(", ")
        );
    }
    std::fs::write(&path, format!("{head}{hosts}  containerRuntime:{tail}")).unwrap();
}
