//! `testenv`: bring up real test hosts for installer, and build what they need.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Real test hosts (systemd + sshd containers) and fixtures for installer.
#[derive(Parser)]
#[command(name = "testenv", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the node image if its recipe changed, and print its tag.
    Image,
    /// Start a cluster of node containers and write its Clusterfile, key and known_hosts.
    ///
    /// The cluster keeps running after this command exits; remove it with `testenv down`.
    Up {
        /// Number of nodes (the first is the master).
        #[arg(short = 'n', long = "nodes", default_value_t = 1)]
        nodes: usize,
        /// Cluster name: names the containers, network and Clusterfile.
        #[arg(long, default_value = testenv::hosts::DEFAULT_NAME)]
        name: String,
        /// The rootfs directory to name in the Clusterfile's spec.image.
        #[arg(long)]
        rootfs: Option<PathBuf>,
        /// Where to write the key, known_hosts and Clusterfile (default: a directory named
        /// after the cluster in testenv's cache directory).
        #[arg(long)]
        workdir: Option<PathBuf>,
    },
    /// Build the realistic fixture rootfs (Debian binaries, registry image, scripts) into
    /// OUT; cached, so a second run with the same recipe returns at once.
    Rootfs {
        /// Where to put it.
        out: PathBuf,
        /// Carry docker instead of containerd only.
        #[arg(long)]
        docker: bool,
        /// Build the variant without clean scripts (basefs-style scripts that record
        /// nothing), from the realistic rootfs cached in testenv's cache directory.
        #[arg(long, conflicts_with = "docker")]
        no_clean_scripts: bool,
    },
    /// Remove a cluster's containers, network, volumes and working directory.
    Down {
        /// Cluster name, as given to `up`.
        #[arg(long, default_value = testenv::hosts::DEFAULT_NAME, conflicts_with = "all")]
        name: String,
        /// Remove every cluster testenv created on this Docker engine.
        #[arg(long)]
        all: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only where a terminal reads them, never in a log file or pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match cli.command {
        Cmd::Image => image(),
        Cmd::Up {
            nodes,
            name,
            rootfs,
            workdir,
        } => up(nodes, name, rootfs, workdir),
        Cmd::Down { name, all } => down(&name, all),
        Cmd::Rootfs {
            out,
            docker,
            no_clean_scripts,
        } => rootfs(&out, docker, no_clean_scripts),
    }
}

fn rootfs(out: &std::path::Path, docker: bool, no_clean_scripts: bool) -> anyhow::Result<()> {
    if no_clean_scripts {
        let base = testenv::cache::cache_dir().join("e2e-rootfs");
        let info = testenv::fixture::build_no_clean_rootfs(out, &base).with_context(|| {
            format!(
                "building the fixture rootfs without clean scripts in {}",
                out.display()
            )
        })?;
        println!("{} (test image {})", info.dir.display(), info.test_image);
        return Ok(());
    }
    let opts = testenv::fixture::RootfsOptions {
        runtime: if docker {
            testenv::fixture::Runtime::Docker
        } else {
            testenv::fixture::Runtime::Containerd
        },
    };
    let info = testenv::fixture::build_rootfs(out, &opts)
        .with_context(|| format!("building the fixture rootfs in {}", out.display()))?;
    println!("{} (test image {})", info.dir.display(), info.test_image);
    Ok(())
}

fn image() -> anyhow::Result<()> {
    let tag = testenv::node_image::ensure_node_image().context("preparing the node image")?;
    println!("{tag}");
    Ok(())
}

fn up(
    nodes: usize,
    name: String,
    rootfs: Option<PathBuf>,
    workdir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let cluster = testenv::hosts::Cluster::up(testenv::hosts::UpOptions {
        nodes,
        name: Some(name.clone()),
        rootfs,
        workdir,
    })
    .with_context(|| format!("bringing up cluster {name}"))?;
    let cluster = cluster.keep();
    println!(
        "cluster {} is up: {} node(s) on Docker network {} ({}), in {:.1} s",
        cluster.name(),
        cluster.hosts().len(),
        cluster.network(),
        cluster.subnet(),
        started.elapsed().as_secs_f64()
    );
    for host in cluster.hosts() {
        println!(
            "  {:<8} {:<15} {:<7} container {}",
            host.name, host.ip, host.role, host.container
        );
    }
    println!(
        "Clusterfile:        {}",
        cluster.clusterfile_path().display()
    );
    println!("private key:        {}", cluster.key_path().display());
    println!(
        "known_hosts:        {}",
        cluster.known_hosts_path().display()
    );
    println!("opspw's password:   {}", cluster.password_path().display());
    if let Some(first) = cluster.hosts().first() {
        println!(
            "try:                ssh -i {} -o UserKnownHostsFile={} root@{}",
            cluster.key_path().display(),
            cluster.known_hosts_path().display(),
            first.ip
        );
    }
    println!("remove with:        testenv down --name {}", cluster.name());
    Ok(())
}

fn down(name: &str, all: bool) -> anyhow::Result<()> {
    let removed = if all {
        testenv::hosts::down_all().context("removing every testenv cluster")?
    } else {
        testenv::hosts::down(name).with_context(|| format!("removing cluster {name}"))?
    };
    println!("{removed}");
    Ok(())
}
