//! `installer clean`: connect, start the agent, gather facts, and have every host's agent
//! undo what it recorded ([`phases::clean`](crate::apply::phases::clean)) — also on hosts
//! where apply failed half-way. Only the Clusterfile is needed: the rootfs may be gone from
//! the controller.

use crate::agent::session::CleanOptions;
use crate::apply::driver::Run;
use crate::apply::host::Started;
use crate::apply::inputs;
use crate::apply::phases::start_agent::StartAgent;
use crate::apply::phases::{clean::Clean, connect::Connect, preflight::Preflight};
use crate::cli::CleanArgs;
use crate::clusterfile::Clusterfile;
use crate::failure::{Failure, RunResult};
use crate::output::event::RunEvent;
use std::sync::Arc;

/// Runs `installer clean`.
pub async fn run(args: CleanArgs) -> RunResult {
    let cf = inputs::load_clusterfile(&args.common).map_err(Failure::BadInput)?;
    let ctx = Arc::new(inputs::run_ctx(&args.common, &cf).map_err(Failure::BadInput)?);
    let cf = Arc::new(cf);
    ctx.reporter.emit(RunEvent::RunStarted {
        command: "clean".into(),
        cluster: cf.name.clone(),
        hosts: cf.hosts.iter().map(|h| h.ip.clone()).collect(),
        dry_run: false,
    });
    crate::apply::warn_about(&ctx, &cf);
    let run = Run {
        ctx,
        concurrency: args.common.concurrency as usize,
        dry_run: false,
    };
    let opts = CleanOptions {
        keep_rootfs: args.keep_rootfs,
        remove_agent: true,
        force: args.force,
    };
    let hosts = run.phase(Connect, cf.hosts.clone()).await?;
    let hosts = run.phase(StartAgent, hosts).await?;
    with_agents(&run, cf, hosts, opts).await
}

/// Clean from the point where every reachable host runs its agent: its facts, the undo,
/// and the report. Returns the run's exit code.
pub async fn with_agents(
    run: &Run,
    clusterfile: Arc<Clusterfile>,
    hosts: Vec<Started>,
    opts: CleanOptions,
) -> RunResult {
    let hosts = run.phase(Preflight::facts_only(), hosts).await?;
    let hosts = run.phase(Clean { clusterfile, opts }, hosts).await?;
    run.close(hosts).await;
    Ok(run.ctx.reporter.finish("not reached"))
}
