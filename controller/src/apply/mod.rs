//! `installer apply`: the phases that take a Clusterfile to prepared hosts, in order.
//!
//! 1. [`inputs`] — parse and validate everything locally; no host is contacted on bad input.
//! 2. [`connect`] — every host in parallel (bounded): SSH with host-key checks, start the
//!    agent, gather facts. A refused host key stops the run before anything changes anywhere.
//! 3. [`preflight`] — architecture supported, rootfs binaries match, enough disk, unique
//!    hostnames, no other apply running.
//! 4. [`transfer`] — build each host's plan, send only the files it lacks.
//! 5. [`steps`] — run the steps up to the registry on every host, wait for all (registry
//!    hosts must be up before the others go on), then run the rest.
//! 6. Report — a per-host table (or NDJSON) and the exit code.

pub mod connect;
pub mod host;
pub mod inputs;
pub mod preflight;
pub mod start_agent;
pub mod steps;
pub mod transfer;

use crate::cli::ApplyArgs;
use crate::failure::{Failure, RunResult};
use crate::output::event::RunEvent;
use host::{Connected, HostFail, RunCtx};
use installer_proto::plan::StepKind;
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
    let concurrency = args.common.concurrency as usize;

    // Connect to everyone first: a refused host key must stop the run before any host changes.
    let connected = match connect::connect_all(&ctx, hosts, concurrency).await {
        Ok(c) => c,
        Err(refusal) => {
            return Err(Failure::Refused(anyhow::anyhow!(
                "{refusal}\nNothing was changed on any host."
            )));
        }
    };
    let live = keep_live(&ctx, connected);
    let live = preflight::check(&ctx, &inputs, live).await;
    let live = transfer::ship_all(&ctx, &inputs, live, &args, concurrency).await;
    let live = if args.dry_run {
        // Nothing runs, so there is no registry to wait for: one pass reports every step.
        steps::run_all(&ctx, live, args.force, None, concurrency, true).await
    } else {
        // Registry first: every host runs up to and including init-registry; the rest of
        // the steps start only when every registry host has its registry answering.
        let barrier = Some(StepKind::InitRegistry);
        let live = steps::run_all(&ctx, live, args.force, barrier, concurrency, false).await;
        steps::run_all(&ctx, live, args.force, None, concurrency, true).await
    };
    close_all(live.into_iter().map(|c| (String::new(), Ok(c))).collect()).await;
    Ok(ctx
        .reporter
        .finish("not reached: an earlier phase stopped the run"))
}

/// Runs `f` on every item with at most `limit` at once; results keep the input order.
pub async fn for_each_host<T, R, F, Fut>(items: Vec<T>, limit: usize, f: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let semaphore = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let f = Arc::new(f);
    let mut tasks = Vec::new();
    for item in items {
        let (semaphore, f) = (semaphore.clone(), f.clone());
        tasks.push(tokio::spawn(async move {
            // The semaphore is never closed, so acquiring only waits.
            let _permit = semaphore.acquire_owned().await.ok();
            f(item).await
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        match t.await {
            Ok(r) => out.push(r),
            // A panicking host task is a bug; surface it instead of losing the host.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}

/// Reports hosts that failed to connect and keeps the others.
pub fn keep_live(
    ctx: &RunCtx,
    results: Vec<(String, Result<Connected, HostFail>)>,
) -> Vec<Connected> {
    let mut live = Vec::new();
    for (host, r) in results {
        match r {
            Ok(c) => live.push(c),
            Err(fail) => fail.report(&ctx.reporter, &host),
        }
    }
    live
}

/// Ends every agent session and SSH connection politely.
pub async fn close_all(items: Vec<(String, Result<Connected, HostFail>)>) {
    for c in items.into_iter().filter_map(|(_, r)| r.ok()) {
        let _ = c.agent.bye().await;
        let _ = c.process.wait().await;
        c.ssh.close().await;
    }
}
