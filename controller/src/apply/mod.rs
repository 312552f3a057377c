//! `installer apply`: the phases that take a Clusterfile to prepared hosts, in order. Each
//! phase is a file under [`phases`], run on every host by the one [`driver`].
//!
//! 1. [`inputs`] — parse and validate everything locally; no host is contacted on bad input.
//! 2. [`connect`](phases::connect) — every host in parallel (bounded): SSH with host-key
//!    checks. A refused host key stops the run before anything changes anywhere.
//! 3. [`start-agent`](phases::start_agent) — upload and start the agent as root.
//! 4. [`preflight`](phases::preflight) — the host's facts; architecture supported, rootfs
//!    binaries match, enough disk, unique hostnames, no other apply running.
//! 5. [`render_check`] — every template renders for every host with its env (facts such
//!    as `HostName` included); otherwise the run stops with every problem and nothing sent.
//! 6. [`ship`](phases::ship) — build each host's plan, send only the files it lacks (with
//!    the fan-out: to the registry hosts only).
//! 7. [`steps`](phases::steps) — run the steps up to the registry on the hosts that have
//!    their files; [`publish`](phases::publish) — the registry hosts push into their
//!    registry what the others lack; wait for every registry host to be up.
//! 8. [`fetch`](phases::fetch) — the other hosts fetch from the registry (the controller
//!    sends what they could not), then run their steps up to the registry.
//! 9. [`steps`](phases::steps) — the rest of the steps on every host.
//! 10. Report — a per-host table (or NDJSON) and the exit code.

pub mod driver;
pub mod host;
pub mod inputs;
pub mod phases;
pub mod render_check;
#[cfg(test)]
mod tests;

pub use phases::start_agent;

use crate::cli::ApplyArgs;
use crate::clusterfile::Clusterfile;
use crate::failure::{Failure, RunResult};
use crate::output::event::RunEvent;
use driver::Run;
use host::{Connected, RunCtx, Started};
use inputs::Inputs;
use installer_proto::plan::Timeouts;
use phases::connect::Connect;
use phases::fetch::Fetch;
use phases::preflight::Preflight;
use phases::publish::{self, Publish};
use phases::ship::Ship;
use phases::start_agent::StartAgent;
use phases::steps::{Steps, StepsPass, registry_barrier};
use std::sync::Arc;

/// Runs `installer apply`.
pub async fn run(args: ApplyArgs) -> RunResult {
    let inputs = inputs::validate(&args).map_err(Failure::BadInput)?;
    let ctx =
        Arc::new(inputs::run_ctx(&args.common, &inputs.clusterfile).map_err(Failure::BadInput)?);
    let hosts = inputs.clusterfile.hosts.clone();
    ctx.reporter.emit(RunEvent::RunStarted {
        command: "apply".into(),
        cluster: inputs.clusterfile.name.clone(),
        hosts: hosts.iter().map(|h| h.ip.clone()).collect(),
        dry_run: args.dry_run,
    });
    warn_about(&ctx, &inputs.clusterfile);
    let run = Run {
        ctx,
        concurrency: args.common.concurrency as usize,
        dry_run: args.dry_run,
    };
    let opts = ApplyOptions {
        force: args.force,
        timeouts: Timeouts {
            script_secs: args.script_timeout,
            registry_secs: args.registry_timeout,
        },
        fan_out: args.fan_out == crate::cli::FanOut::Auto,
    };
    // Connect to everyone first: a refused host key must stop the run before any host changes.
    let hosts = run.phase(Connect, hosts).await?;
    let hosts = run.phase(StartAgent, hosts).await?;
    with_agents(&run, &inputs, hosts, &opts).await
}

/// Tells what the Clusterfile had that was accepted with a word to say, before any host is
/// contacted (clean tells it too: it reads the same file).
pub(crate) fn warn_about(ctx: &RunCtx, cf: &Clusterfile) {
    for w in &cf.warnings {
        ctx.reporter.emit(RunEvent::Warning {
            message: w.to_string(),
        });
    }
}

/// What apply's phases take from the command line besides a dry run.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Run steps even when nothing they depend on changed.
    pub force: bool,
    /// The timeouts every plan carries.
    pub timeouts: Timeouts,
    /// Let hosts without a registry fetch their files from the cluster's registry.
    pub fan_out: bool,
}

/// Apply from the point where every reachable host runs its agent: preflight, then
/// [`ship_and_steps`]. Returns the run's exit code.
pub async fn with_agents(
    run: &Run,
    inputs: &Arc<Inputs>,
    hosts: Vec<Started>,
    opts: &ApplyOptions,
) -> RunResult {
    let preflight = Preflight::checking(inputs.clone());
    let hosts = run.phase(preflight, hosts).await?;
    match render_check::check(inputs, &hosts, &opts.timeouts).await {
        Ok(notes) => {
            for message in notes {
                run.ctx.reporter.emit(RunEvent::Warning { message });
            }
        }
        Err(problems) => {
            run.close(hosts).await;
            return Err(Failure::BadInput(anyhow::anyhow!(problems)));
        }
    }
    ship_and_steps(run, inputs, hosts, opts).await
}

/// Apply on hosts that passed preflight: ship, the steps in two passes with the fan-out
/// between them, and the report. Returns the run's exit code.
///
/// With the fan-out, the hosts that run no registry are sent nothing at first; the
/// registry hosts get everything, run up to `init-registry`, and push into their registry
/// what the others lack; those then fetch it from there (the controller sends what they
/// could not fetch) and run their steps. Without it, every host is sent what it lacks.
pub async fn ship_and_steps(
    run: &Run,
    inputs: &Arc<Inputs>,
    hosts: Vec<Connected>,
    opts: &ApplyOptions,
) -> RunResult {
    let registry_hosts: Vec<String> = inputs
        .clusterfile
        .registry_hosts()
        .iter()
        .map(|h| h.ip.clone())
        .collect();
    let fan_out = opts.fan_out
        && hosts.iter().any(|c| registry_hosts.contains(&c.host.ip))
        && hosts.iter().any(|c| !registry_hosts.contains(&c.host.ip));
    let ship = Ship {
        inputs: inputs.clone(),
        timeouts: opts.timeouts.clone(),
        fan_out,
    };
    let hosts = run.phase(ship, hosts).await?;
    let (deferred, direct): (Vec<Connected>, Vec<Connected>) = hosts
        .into_iter()
        .partition(|c| !c.stats.deferred.is_empty());
    // Registry first: the hosts that have their files run up to and including
    // init-registry; the rest of the steps start only when every registry host has its
    // registry answering. (A dry run leaves the first pass out: nothing runs, so there is
    // no registry to wait for.)
    let force = opts.force;
    let pass = StepsPass::Registry;
    let direct = run.phase(Steps { pass, force }, direct).await?;
    let publish = Publish {
        files: Arc::new(publish::deferred_files(&deferred)),
        registry_hosts: Arc::new(registry_hosts.clone()),
    };
    let direct = run.phase(publish, direct).await?;
    let sources: Vec<String> = direct
        .iter()
        .filter(|c| c.stats.published)
        .map(|c| c.host.ip.clone())
        .collect();
    let hosts = registry_barrier(
        run,
        &registry_hosts,
        direct.into_iter().chain(deferred).collect(),
    )
    .await;
    let (deferred, direct): (Vec<Connected>, Vec<Connected>) = hosts
        .into_iter()
        .partition(|c| !c.stats.deferred.is_empty());
    let fetch = Fetch {
        inputs: inputs.clone(),
        sources: Arc::new(sources),
    };
    let fetched = run.phase(fetch, deferred).await?;
    let fetched = run.phase(Steps { pass, force }, fetched).await?;
    let pass = StepsPass::Rest;
    let hosts = run
        .phase(
            Steps { pass, force },
            direct.into_iter().chain(fetched).collect(),
        )
        .await?;
    run.close(hosts).await;
    Ok(run
        .ctx
        .reporter
        .finish("not reached: an earlier phase stopped the run"))
}
