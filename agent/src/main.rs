//! `installer-agent`: the only code that changes a host. `serve` is the controller-driven
//! face (wire protocol on stdin/stdout); `apply`, `clean` and `facts` are for running it by
//! hand. Logs go to stderr.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use installer_agent::clean::{CleanRequest, clean};
use installer_agent::error::ApplyError;
use installer_agent::handrun::{self, HandApply};
use installer_agent::root::HostRoot;
use installer_agent::sink::TermSink;
use installer_proto::env::{Env, parse_entries};
use installer_proto::plan::{
    DEFAULT_CONTAINER_RUNTIME, DEFAULT_DATA_ROOT, DEFAULT_REGISTRY_DOMAIN, DEFAULT_REGISTRY_PORT,
    DEFAULT_REGISTRY_TIMEOUT_SECS, DEFAULT_SCRIPT_TIMEOUT_SECS, Timeouts, check_cluster_dir,
    check_cluster_name, check_data_root,
};
use installer_proto::term;
use std::io::{BufReader, IsTerminal};
use std::path::PathBuf;
use std::time::Duration;

/// installer-agent: prepare this host from a rootfs, and undo exactly that.
#[derive(Debug, Parser)]
#[command(
    name = "installer-agent",
    version,
    after_help = "Exit codes:\n  0  ok\n  1  a step failed, or something could not be undone\n  2  bad input (flags, rootfs, a data root or cluster directory that is not this product's)\n  3  refused: another apply or clean is running on this host (nothing was changed; wait and run again)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args, Clone)]
struct RootArg {
    /// Treat DIR as `/` for every path written (bin, configs, hosts file, state); scripts
    /// get it as InstallRoot. For previews and tests.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

impl RootArg {
    fn host_root(&self) -> HostRoot {
        self.root
            .as_deref()
            .map(HostRoot::at)
            .unwrap_or_else(HostRoot::real)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Speak the controller protocol on stdin/stdout (started by `installer apply`).
    Serve(RootArg),
    /// Prepare this host from a local rootfs directory.
    #[command(
        after_help = "Example:\n  installer-agent apply --rootfs /mnt/rootfs --cluster prod --role master --registry-host \\\n      --env SvcCIDR=10.96.0.0/16 --host-env HostLabel=edge"
    )]
    Apply(Box<ApplyCmd>),
    /// Undo what apply recorded for a cluster on this host.
    #[command(after_help = "Example:\n  installer-agent clean --cluster prod")]
    Clean(CleanCmd),
    /// Run a step's program so that it dies with this agent (internal: every script step
    /// runs under it).
    #[command(name = "step-guard", hide = true)]
    StepGuard {
        /// The program and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        argv: Vec<String>,
    },
    /// Print this host's facts as JSON.
    Facts {
        /// Data root to measure free disk at.
        #[arg(long, default_value = DEFAULT_DATA_ROOT)]
        data_root: String,
        /// Summarise the recorded state of this cluster.
        #[arg(long)]
        cluster: Option<String>,
        #[command(flatten)]
        root: RootArg,
    },
}

#[derive(Debug, Args)]
struct ApplyCmd {
    /// The rootfs directory (sealer CloudRootfs layout).
    #[arg(long, value_name = "DIR")]
    rootfs: PathBuf,
    /// Cluster name (a path component under the data root).
    #[arg(long)]
    cluster: String,
    /// Cluster env, KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Host env, KEY=VALUE, overriding --env (repeatable).
    #[arg(long = "host-env", value_name = "K=V")]
    host_env: Vec<String>,
    /// Role of this host (repeatable): master, node or a custom name.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// This host runs sealer-registry.
    #[arg(long)]
    registry_host: bool,
    /// The registry's IP for the /etc/hosts line (default: this host's).
    #[arg(long, value_name = "IP")]
    registry_ip: Option<String>,
    /// Registry domain.
    #[arg(long, default_value = DEFAULT_REGISTRY_DOMAIN)]
    registry_domain: String,
    /// Registry port.
    #[arg(long, default_value_t = DEFAULT_REGISTRY_PORT)]
    registry_port: u16,
    /// This host's IP (default: the default route's interface address).
    #[arg(long, value_name = "IP")]
    host_ip: Option<String>,
    /// master0's IP (default: this host's).
    #[arg(long, value_name = "IP")]
    master0_ip: Option<String>,
    /// Container runtime: containerd or docker.
    #[arg(long, default_value = DEFAULT_CONTAINER_RUNTIME)]
    container_runtime: String,
    /// Data root.
    #[arg(long, default_value = DEFAULT_DATA_ROOT)]
    data_root: String,
    /// Run every step even if its inputs did not change.
    #[arg(long)]
    force: bool,
    /// Print the steps that would run; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Seconds each script may run.
    #[arg(long, default_value_t = DEFAULT_SCRIPT_TIMEOUT_SECS)]
    script_timeout: u64,
    /// Seconds to wait for the registry.
    #[arg(long, default_value_t = DEFAULT_REGISTRY_TIMEOUT_SECS)]
    registry_timeout: u64,
    /// The trees watched around script steps (JSON: trees, copy_trees, copy_file_max,
    /// copy_total_max, shallow, exclude; keys left out keep their defaults).
    #[arg(long, value_name = "FILE")]
    watch_config: Option<PathBuf>,
    /// Print events as NDJSON.
    #[arg(long)]
    json: bool,
    /// Print script output as it comes.
    #[arg(short, long)]
    verbose: bool,
    #[command(flatten)]
    root: RootArg,
}

#[derive(Debug, Args)]
struct CleanCmd {
    /// Cluster name.
    #[arg(long)]
    cluster: String,
    /// Keep <dataRoot>/<cluster>/rootfs.
    #[arg(long)]
    keep_rootfs: bool,
    /// Also restore or remove what a person changed since apply.
    #[arg(long)]
    force: bool,
    /// Data root.
    #[arg(long, default_value = DEFAULT_DATA_ROOT)]
    data_root: String,
    /// Print events as NDJSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    root: RootArg,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only where a terminal reads them, never in a log file or pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Errors name rootfs paths and echo flags; the terminal gets them without
            // control sequences.
            eprintln!("error: {}", term::for_terminal(&format!("{e:#}")));
            exit_code_of(&e)
        }
    };
    std::process::exit(code);
}

/// Exit code when a run could not start or was refused.
const BAD_INPUT: i32 = 2;
/// Exit code when another apply or clean holds the host lock: nothing was changed, and the
/// same command succeeds once the other finishes, so it is not bad input.
const REFUSED: i32 = 3;

/// The exit code for an error that ended `run`.
fn exit_code_of(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<ApplyError>() {
        Some(a) if a.is_busy() => REFUSED,
        _ => BAD_INPUT,
    }
}

fn env_of(entries: &[String], flag: &str) -> anyhow::Result<Env> {
    parse_entries(entries).with_context(|| flag.to_string())
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(root) => {
            let stdin = std::io::stdin();
            installer_agent::serve::serve(
                root.host_root(),
                BufReader::new(stdin.lock()),
                std::io::stdout(),
            )?;
            Ok(0)
        }
        Command::StepGuard { argv } => Ok(installer_agent::exec::guard::run(&argv)),
        Command::Facts {
            data_root,
            cluster,
            root,
        } => {
            let facts =
                installer_agent::facts::gather(&root.host_root(), &data_root, cluster.as_deref());
            println!("{}", serde_json::to_string_pretty(&facts)?);
            Ok(0)
        }
        Command::Apply(a) => {
            let a = *a;
            check_cluster_name(&a.cluster)?;
            check_data_root(&a.data_root)?;
            check_cluster_dir(&a.data_root, &a.cluster)?;
            let args = HandApply {
                rootfs: a.rootfs,
                cluster: a.cluster,
                env: env_of(&a.env, "--env")?,
                host_env: env_of(&a.host_env, "--host-env")?,
                roles: a.roles,
                registry_host: a.registry_host,
                registry_domain: a.registry_domain,
                registry_port: a.registry_port,
                registry_ip: a.registry_ip,
                host_ip: a.host_ip,
                master0_ip: a.master0_ip,
                container_runtime: a.container_runtime,
                data_root: a.data_root,
                timeouts: Timeouts {
                    script_secs: a.script_timeout,
                    registry_secs: a.registry_timeout,
                },
                watch: match &a.watch_config {
                    Some(path) => serde_json::from_slice(
                        &std::fs::read(path)
                            .with_context(|| format!("--watch-config {}", path.display()))?,
                    )
                    .with_context(|| format!("--watch-config {}", path.display()))?,
                    None => Default::default(),
                },
            };
            let sink = TermSink::new(a.json, a.verbose);
            let outcome =
                handrun::apply(a.root.host_root(), &args, a.force, a.dry_run, None, &sink)?;
            report(&outcome, a.json, "apply");
            Ok(if outcome.ok { 0 } else { 1 })
        }
        Command::Clean(c) => {
            check_cluster_name(&c.cluster)?;
            check_data_root(&c.data_root)?;
            check_cluster_dir(&c.data_root, &c.cluster)?;
            let sink = TermSink::new(c.json, false);
            let req = CleanRequest {
                cluster: c.cluster,
                data_root: c.data_root,
                keep_rootfs: c.keep_rootfs,
                plugins: Vec::new(),
                env: Env::new(),
                remove_agent: false,
                force: c.force,
                script_timeout: Duration::from_secs(DEFAULT_SCRIPT_TIMEOUT_SECS),
            };
            let outcome = clean(&c.root.host_root(), &req, &sink)?;
            report(&outcome, c.json, "clean");
            Ok(if outcome.ok { 0 } else { 1 })
        }
    }
}

/// The closing line (or JSON object) of a hand run.
fn report(outcome: &installer_proto::event::Outcome, json: bool, what: &str) {
    if json {
        if let Ok(text) =
            term::json_line(&serde_json::json!({ "event": "done", "outcome": outcome }))
        {
            println!("{text}");
        }
        return;
    }
    let text = if outcome.ok {
        format!(
            "{what}: ok ({} ran, {} skipped)",
            outcome.ran, outcome.skipped
        )
    } else if let Some(step) = &outcome.failed_step {
        format!(
            "{what}: FAILED at {step}: {}",
            outcome.error.as_deref().unwrap_or("")
        )
    } else {
        format!("{what}: could not undo: {}", outcome.not_undone.join(", "))
    };
    // The error carries the failed script's last lines.
    println!("{}", term::for_terminal(&text));
}
