//! Apply's phases against the real agent, served in-process: each host is an agent thread
//! of this process that takes a temp directory for `/` (its `--root`), linked to the
//! controller by a socket pair instead of SSH. No SSH server, no container, and nothing
//! changes outside the temp directories.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod driver;
mod fanout;
mod phases;
mod registry_trust;

use super::driver::Run;
use super::host::{RunCtx, Started};
use super::inputs::Inputs;
use super::phases::preflight::Preflight;
use super::{ApplyOptions, ship_and_steps, with_agents};
use crate::agent::binary::AgentBuilds;
use crate::agent::link::{AgentLink, AgentReader, AgentWriter, Closing};
use crate::agent::session::{AgentSession, CleanOptions};
use crate::clusterfile::{self, HostSpec};
use crate::output::event::RunEvent;
use crate::output::{OutputMode, Reporter};
use crate::rootfs::{self, UnpackLimits};
use crate::ssh::{ConnectOptions, HostKeyPolicy};
use installer_agent::root::HostRoot;
use installer_proto::plan::Timeouts;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The minimal fixture rootfs: scripts that record their order and fail or hang on demand.
fn fixture_rootfs() -> PathBuf {
    testenv::fixture::minimal_dir()
}

/// An agent served on a thread of this process; the thread ends when its stream does,
/// and the test waits for it (see [`Cluster::apply`]).
struct InProcess;

impl AgentLink for InProcess {
    fn stderr_hint(&self) -> String {
        // The in-process agent's diagnostics go to the test's tracing, not to a pipe.
        String::new()
    }

    fn close(self: Box<Self>) -> Closing {
        Box::pin(async {})
    }
}

/// Starts an agent for `host` with `root` as its `/` and shakes hands with it; returns the
/// host and the agent's thread.
async fn start_agent(host: HostSpec, root: &Path) -> (Started, std::thread::JoinHandle<()>) {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let input = std::io::BufReader::new(theirs.try_clone().unwrap());
    let root = HostRoot::at(root);
    let thread = std::thread::spawn(move || {
        if let Err(e) = installer_agent::serve::serve(root, input, theirs) {
            tracing::debug!("in-process agent: {e}");
        }
    });
    ours.set_nonblocking(true).unwrap();
    let (reader, writer) = tokio::net::UnixStream::from_std(ours).unwrap().into_split();
    let (reader, writer): (AgentReader, AgentWriter) = (Box::new(reader), Box::new(writer));
    let agent = AgentSession::handshake(reader, writer).await.unwrap();
    let started = Started {
        host,
        arch: "x86_64".into(),
        agent,
        link: Box::new(InProcess),
    };
    (started, thread)
}

/// A cluster of in-process hosts on the fixture rootfs: the first is the master (and the
/// registry host), the others are nodes.
struct Cluster {
    dir: tempfile::TempDir,
    inputs: Arc<Inputs>,
    roots: Vec<tempfile::TempDir>,
    /// Whether apply runs with the fan-out (off unless a test asks: the in-process hosts
    /// have no registry to fetch from).
    fan_out: bool,
}

impl Cluster {
    fn new(hosts: usize) -> Cluster {
        Cluster::with_layers(hosts, Vec::new())
    }

    /// [`Cluster::new`] with `layers` (overlay directories) over the fixture.
    fn with_layers(hosts: usize, layers: Vec<PathBuf>) -> Cluster {
        Cluster::custom(hosts, layers, "")
    }

    /// [`Cluster::with_layers`] with `docs` (YAML documents, each starting with `---`)
    /// after the Cluster in the Clusterfile.
    fn custom(hosts: usize, layers: Vec<PathBuf>, docs: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let ips: Vec<String> = (1..=hosts).map(|i| format!("10.0.0.{i}")).collect();
        let mut text = format!(
            "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {{name: c1}}\nspec:\n  image: {}\n  hosts:\n    - ips: [{}]\n      roles: [master]\n",
            fixture_rootfs().display(),
            ips[0]
        );
        if hosts > 1 {
            text += &format!(
                "    - ips: [{}]\n      roles: [node]\n",
                ips[1..].join(", ")
            );
        }
        text += docs;
        let cf = clusterfile::parse_with_env("Clusterfile", &text, &|_| None).unwrap();
        let cache = dir.path().join("cache");
        let rootfs =
            rootfs::resolve_with(&cf.image, dir.path(), &cache, &UnpackLimits::default()).unwrap();
        let frames = dir.path().join("frames");
        let inputs = Arc::new(Inputs::new(cf, rootfs, layers, Default::default(), &frames));
        let roots = (0..hosts).map(|_| host_root()).collect();
        Cluster {
            dir,
            inputs,
            roots,
            fan_out: false,
        }
    }

    /// The cluster with its inputs changed by `change` (before any run).
    fn with_inputs(mut self, change: impl FnOnce(&mut Inputs)) -> Cluster {
        change(Arc::get_mut(&mut self.inputs).expect("no run holds the inputs yet"));
        self
    }

    /// A fresh agent on every host, and their threads.
    async fn start_agents(&self) -> (Vec<Started>, Vec<std::thread::JoinHandle<()>>) {
        let (mut hosts, mut threads) = (Vec::new(), Vec::new());
        let cf = &self.inputs.clusterfile;
        for (spec, root) in cf.hosts.iter().zip(&self.roots) {
            let (host, thread) = start_agent(spec.clone(), root.path()).await;
            hosts.push(host);
            threads.push(thread);
        }
        (hosts, threads)
    }

    /// One `installer clean` from the point where the agents run (like [`Cluster::apply`]).
    async fn clean(&self) -> Applied {
        let cf = &self.inputs.clusterfile;
        let ctx = run_ctx(self.dir.path(), &cf.name, &cf.data_root);
        ctx.reporter.emit(RunEvent::RunStarted {
            command: "clean".into(),
            cluster: cf.name.clone(),
            hosts: cf.hosts.iter().map(|h| h.ip.clone()).collect(),
            dry_run: false,
        });
        let (hosts, threads) = self.start_agents().await;
        let run = Run {
            ctx: ctx.clone(),
            concurrency: 4,
            dry_run: false,
        };
        let opts = CleanOptions {
            keep_rootfs: false,
            remove_agent: true,
            force: false,
        };
        let code = crate::clean::with_agents(&run, Arc::new(cf.clone()), hosts, opts)
            .await
            .unwrap();
        wait_for(threads).await;
        let events = logged(&ctx);
        Applied { code, events }
    }

    fn ip(&self, i: usize) -> String {
        self.inputs.clusterfile.hosts[i].ip.clone()
    }

    fn root(&self, i: usize) -> &Path {
        self.roots[i].path()
    }

    /// One `installer apply` from the point where the agents run: fresh agents, a fresh
    /// reporter, every event of the run. Returns once every agent of the run has ended.
    async fn apply(&self, dry_run: bool) -> Applied {
        match self.try_apply(dry_run).await {
            Ok(applied) => applied,
            Err(e) => panic!("apply refused: {e:#}"),
        }
    }

    /// [`Cluster::apply`], with the run's own failure (bad input, a refusal) returned.
    async fn try_apply(&self, dry_run: bool) -> Result<Applied, crate::failure::Failure> {
        let cf = &self.inputs.clusterfile;
        let ctx = run_ctx(self.dir.path(), &cf.name, &cf.data_root);
        ctx.reporter.emit(RunEvent::RunStarted {
            command: "apply".into(),
            cluster: cf.name.clone(),
            hosts: cf.hosts.iter().map(|h| h.ip.clone()).collect(),
            dry_run,
        });
        let (hosts, threads) = self.start_agents().await;
        let run = Run {
            ctx: ctx.clone(),
            concurrency: 4,
            dry_run,
        };
        let opts = ApplyOptions {
            force: false,
            timeouts: Timeouts {
                script_secs: 60,
                registry_secs: 10,
            },
            fan_out: self.fan_out,
        };
        let code = if hosts.len() == 1 {
            with_agents(&run, &self.inputs, hosts, &opts).await
        } else {
            // Every in-process agent reports this machine's hostname, which preflight would
            // refuse as shared: several hosts get their facts and skip the checks.
            let hosts = run.phase(Preflight::facts_only(), hosts).await.unwrap();
            ship_and_steps(&run, &self.inputs, hosts, &opts).await
        };
        wait_for(threads).await;
        let events = logged(&ctx);
        code.map(|code| Applied { code, events })
    }
}

/// Waits for agent threads to end. Closed hosts said goodbye and dropped ones closed their
/// stream, so every agent of a finished run ends, releasing its host's lock.
async fn wait_for(threads: Vec<std::thread::JoinHandle<()>>) {
    for thread in threads {
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }
}

/// A run's settings for `cluster`, with its logs and (absent) agent builds under `dir`.
fn run_ctx(dir: &Path, cluster: &str, data_root: &str) -> Arc<RunCtx> {
    let reporter = Reporter::new(&dir.join("runs"), OutputMode::Plain, false).unwrap();
    Arc::new(RunCtx {
        cluster: cluster.to_string(),
        data_root: data_root.to_string(),
        host_keys: HostKeyPolicy {
            known_hosts: dir.join("known_hosts"),
            accept_new: false,
        },
        ssh_options: ConnectOptions {
            connect_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(5),
        },
        agents: AgentBuilds::discover(Some(dir)).unwrap(),
        sudo_password: None,
        agent_root: None,
        reporter: Arc::new(reporter),
    })
}

/// The NDJSON events a finished run logged.
fn logged(ctx: &RunCtx) -> Vec<Value> {
    let log = ctx.reporter.log_dir().join("events.ndjson");
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A temp directory holding what a host has before any apply.
fn host_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["etc", "var/lib", "usr/local"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    std::fs::write(dir.path().join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    dir
}

/// What one apply reported.
struct Applied {
    code: i32,
    events: Vec<Value>,
}

impl Applied {
    /// The host's events of one `type`.
    fn of(&self, host: &str, ty: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["type"] == ty && e["host"] == host)
            .collect()
    }

    /// The steps of the agent's `event` kind on `host`, in order.
    fn steps(&self, host: &str, event: &str) -> Vec<String> {
        self.of(host, "agent")
            .into_iter()
            .filter(|e| e["event"] == event)
            .map(|e| e["step"].as_str().unwrap().to_string())
            .collect()
    }

    /// The phases `host` entered, in order.
    fn phases(&self, host: &str) -> Vec<String> {
        self.of(host, "phase_started")
            .into_iter()
            .map(|e| e["phase"].as_str().unwrap().to_string())
            .collect()
    }

    /// The host's final status line.
    fn status(&self, host: &str) -> &Value {
        let ends = self.of(host, "host_finished");
        assert_eq!(ends.len(), 1, "{host} finished once: {ends:?}");
        ends[0]
    }

    fn describe(&self) -> String {
        self.events
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Every path under `root` with its kind and content.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in std::fs::read_dir(&dir).unwrap() {
            let path = item.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let desc = if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else if meta.is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else {
                format!("file {:?}", std::fs::read(&path).unwrap())
            };
            out.insert(rel, desc);
        }
    }
    out
}
