//! `installer`: parse the command line, set up logging, dispatch, map the outcome to an exit
//! code (see `installer --help`).

use clap::{CommandFactory, Parser};
use installer::cli::{Cli, Command};
use installer::exit;
use std::io::IsTerminal;

fn main() {
    let cli = Cli::parse();
    // Diagnostics go to stderr and stay quiet unless RUST_LOG asks; the run's own output
    // (progress, table, NDJSON) is the reporter's.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only where a terminal reads them, never in a log file or pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let code = match cli.command {
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "installer",
                &mut std::io::stdout(),
            );
            exit::OK
        }
        Command::Apply(args) => run(installer::apply::run(args)),
        Command::Clean(args) => run(installer::clean::run(args)),
    };
    std::process::exit(code);
}

fn run(fut: impl std::future::Future<Output = installer::RunResult>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return exit::HOST_FAILED;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = fut => Some(r),
            // Ctrl-C: stop here. The SSH connections close with the process, so each host's
            // agent finishes the step it is in, starts no other, and records where it stopped
            // (the next apply resumes there).
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(code)) => code,
        Some(Err(failure)) => {
            // Messages quote Clusterfile values and rootfs paths, which may hold escapes.
            eprintln!(
                "{}",
                installer_proto::term::for_terminal(&failure.to_string())
            );
            failure.exit_code()
        }
        None => {
            eprintln!(
                "interrupted; hosts stop after their current step, and the next apply resumes there"
            );
            exit::INTERRUPTED
        }
    }
}
