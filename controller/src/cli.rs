//! The command line: `installer apply`, `installer clean`, `installer completion`.
//! Doc comments here are the `--help` text.

use crate::output::OutputMode;
use clap::{Args, Parser, Subcommand};
use installer_proto::plan;
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0    every host ended ok
  1    at least one host failed or was not reached (see the table and the run's logs)
  2    bad input (Clusterfile, rootfs, overlays, flags); no host was contacted
  3    refused for safety, nothing changed on any host (unknown or changed host key, or
       hosts busy with another apply or clean)
  130  interrupted";

/// installer: turn Linux hosts into Kubernetes-ready nodes from a rootfs, over SSH.
#[derive(Debug, Parser)]
#[command(name = "installer", version, propagate_version = true, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare every host of a Clusterfile from its rootfs.
    #[command(after_help = concat!(
        "Examples:\n",
        "  installer apply -f Clusterfile\n",
        "  installer apply -f Clusterfile --overlay ./my-overlay --dry-run\n",
        "  installer apply -f Clusterfile -o json > run.ndjson\n",
        "  SUDO_PW=... installer apply -f Clusterfile --sudo-password-env SUDO_PW\n\n",
        "Exit codes: 0 ok, 1 a host failed, 2 bad input, 3 refused (host key, or hosts busy and nothing changed), 130 interrupted."
    ))]
    Apply(ApplyArgs),
    /// Undo on every host exactly what apply did (also after a failed apply).
    #[command(after_help = concat!(
        "Examples:\n",
        "  installer clean -f Clusterfile\n",
        "  installer clean -f Clusterfile --keep-rootfs\n\n",
        "Exit codes: 0 ok, 1 a host failed, 2 bad input, 3 refused (host key, or hosts busy and nothing changed), 130 interrupted."
    ))]
    Clean(CleanArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  installer completion bash > /etc/bash_completion.d/installer"
    )]
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Options shared by apply and clean.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// The Clusterfile.
    #[arg(short = 'f', long = "file", value_name = "CLUSTERFILE")]
    pub clusterfile: PathBuf,

    /// How many hosts to work on at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    /// Output: a live view on a terminal (auto), plain lines, or NDJSON events (json).
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputMode::Auto)]
    pub output: OutputMode,

    /// Show script output lines as they come (plain output).
    #[arg(short, long)]
    pub verbose: bool,

    /// Trust and record host keys not yet in known_hosts (a changed key is always refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,

    /// The known_hosts file to check host keys against.
    #[arg(long, value_name = "FILE", default_value = "~/.ssh/known_hosts")]
    pub known_hosts: String,

    /// Read the sudo password for non-root SSH users from this environment variable
    /// (default: spec.ssh.passwd). It is fed to sudo once on stdin, never on a command line.
    #[arg(long, value_name = "NAME")]
    pub sudo_password_env: Option<String>,

    /// Directory holding the static agent builds (installer-agent-<arch>).
    #[arg(long, value_name = "DIR", env = "INSTALLER_AGENT_DIR")]
    pub agent_dir: Option<PathBuf>,

    /// Seconds to wait for an SSH connection.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout: u64,

    /// Run every host's agent with `--root DIR` (DIR stands for `/` on the host): a preview
    /// that touches no real system path. For testing rootfs trees.
    #[arg(long, value_name = "DIR", hide = true)]
    pub agent_root: Option<String>,

    /// Where run logs go (`<dir>/<run-id>/<host>.log`).
    #[arg(long, value_name = "DIR", default_value = crate::output::RUNS_DIR)]
    pub log_dir: PathBuf,
}

/// `installer apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Options shared with clean.
    #[command(flatten)]
    pub common: Common,

    /// A directory layered over the rootfs, in order (e.g. one holding scripts/preHook.sh).
    #[arg(long = "overlay", value_name = "DIR")]
    pub overlays: Vec<PathBuf>,

    /// Show, per host, the files and bytes that would be sent and the steps that would run;
    /// change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Run every step again, even those whose inputs did not change.
    #[arg(long)]
    pub force: bool,

    /// Seconds each script may run.
    #[arg(long, value_name = "SECS", default_value_t = plan::DEFAULT_SCRIPT_TIMEOUT_SECS)]
    pub script_timeout: u64,

    /// Seconds to wait for the local registry to answer.
    #[arg(long, value_name = "SECS", default_value_t = plan::DEFAULT_REGISTRY_TIMEOUT_SECS)]
    pub registry_timeout: u64,

    /// How hosts without a registry get their files: `auto` — the registry hosts receive
    /// everything and push into their registry what the others lack, and the others fetch
    /// it from there (the controller sends only what they could not fetch); `off` — the
    /// controller sends every host what it lacks.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = FanOut::Auto)]
    pub fan_out: FanOut,

    /// Replace the registry's CA and server certificate with new ones (they are otherwise
    /// kept in the controller's state directory and reused); every host is given the new CA
    /// and the registry restarts with the new certificate.
    #[arg(long)]
    pub rotate_registry_certs: bool,

    /// The trees the agents watch around script steps, so clean can undo what scripts did
    /// (YAML or JSON: trees, copy_trees, copy_file_max, copy_total_max, shallow, exclude;
    /// see README "Watched trees").
    #[arg(long, value_name = "FILE")]
    pub watch_config: Option<PathBuf>,
}

/// How files reach the hosts that run no registry (`--fan-out`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FanOut {
    /// Through the cluster's registry when the run has registry hosts and other hosts.
    Auto,
    /// From the controller, to every host.
    Off,
}

/// `installer clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Options shared with apply.
    #[command(flatten)]
    pub common: Common,

    /// Keep `<dataRoot>/<cluster>/rootfs` on the hosts as a cache for the next apply.
    #[arg(long)]
    pub keep_rootfs: bool,

    /// Also restore or remove files a person changed since apply (by default they are kept
    /// and reported, and the host keeps its record so clean can finish later).
    #[arg(long)]
    pub force: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_examples_in_help() {
        let mut cmd = Cli::command();
        for name in ["apply", "clean", "completion"] {
            let sub = cmd.find_subcommand_mut(name).unwrap();
            let help = sub.render_long_help().to_string();
            assert!(help.contains("Example"), "{name} --help lacks examples");
        }
    }
}
