//! `installer clean`: on every host, the agent undoes what it recorded (SPEC §6) — also on
//! hosts where apply failed half-way — and reports what it removed and what it could not.
//! Only the Clusterfile is needed: the rootfs may be gone from the controller.

use crate::agent::session::CleanOptions;
use crate::apply::host::{Connected, HostFail};
use crate::apply::{close_all, connect, for_each_host, inputs, keep_live};
use crate::cli::CleanArgs;
use crate::failure::{Failure, RunResult};
use crate::output::event::{HostStatus, Phase, RunEvent};
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
    let concurrency = args.common.concurrency as usize;
    let connected = match connect::connect_all(&ctx, cf.hosts.clone(), concurrency).await {
        Ok(c) => c,
        Err(refusal) => {
            return Err(Failure::Refused(anyhow::anyhow!(
                "{refusal}\nNothing was changed on any host."
            )));
        }
    };
    let live = keep_live(&ctx, connected);
    let opts = CleanOptions {
        keep_rootfs: args.keep_rootfs,
        remove_agent: true,
        force: args.force,
    };
    let done = for_each_host(live, concurrency, {
        let (ctx, cf) = (ctx.clone(), cf.clone());
        move |c| {
            let (ctx, cf) = (ctx.clone(), cf.clone());
            async move { clean_one(&ctx, &cf, c, opts).await }
        }
    })
    .await;
    close_all(
        done.into_iter()
            .flatten()
            .map(|c| (String::new(), Ok(c)))
            .collect(),
    )
    .await;
    Ok(ctx.reporter.finish("not reached"))
}

async fn clean_one(
    ctx: &crate::apply::host::RunCtx,
    cf: &crate::clusterfile::Clusterfile,
    mut c: Connected,
    opts: CleanOptions,
) -> Option<Connected> {
    let host = c.host.ip.clone();
    ctx.reporter.emit(RunEvent::PhaseStarted {
        host: host.clone(),
        phase: Phase::Clean,
    });
    let plugins = crate::plan::plugins_for(cf, &c.host);
    let env = crate::plan::clean_env(cf, &c.host, &c.facts);
    let reporter = ctx.reporter.clone();
    let mut on_event = |event| {
        reporter.emit(RunEvent::Agent {
            host: host.clone(),
            event,
        })
    };
    let result = c
        .agent
        .clean(&cf.name, &cf.data_root, plugins, env, opts, &mut on_event)
        .await;
    match result {
        Ok(outcome) if outcome.ok => {
            ctx.reporter.emit(RunEvent::HostFinished {
                host,
                status: HostStatus::Ok {
                    ran: outcome.ran,
                    skipped: 0,
                    bytes_sent: 0,
                    files_sent: 0,
                    not_undone: Vec::new(),
                },
            });
            Some(c)
        }
        Ok(outcome) => {
            HostFail::Failed {
                phase: Phase::Clean,
                step: None,
                reason: format!("could not undo: {}", outcome.not_undone.join(", ")),
            }
            .report(&ctx.reporter, &host);
            Some(c)
        }
        Err(e) => {
            HostFail::from_session(Phase::Clean, e, &c.process.stderr_hint())
                .report(&ctx.reporter, &host);
            None
        }
    }
}
