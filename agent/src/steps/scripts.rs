//! Run a rootfs script or a Plugin hook with the host env (SPEC §4): values only through the
//! process environment, cwd `<rootfs>/scripts` (plugins: the rootfs), the plan's timeout,
//! output streamed and kept in `state/logs/<step>.log`.

use super::{Ctx, StepResult, Written, step_err};
use crate::exec::{self, Job};
use crate::journal::{Journal, Running};
use crate::root::HostRoot;
use crate::sink::Sink;
use installer_proto::env::Env;
use installer_proto::event::StepError;
use std::path::Path;
use std::time::Duration;

/// The env a script or hook gets: the plan's env (its shell-name keys; the others are for
/// templates) plus `InstallRoot` (empty for the real `/`).
pub(crate) fn script_env(env: &Env, root: &HostRoot) -> Env {
    let mut env = installer_proto::env::for_scripts(env);
    env.insert("InstallRoot".into(), root.install_root());
    env.entry("PATH".into())
        .or_insert_with(|| exec::SCRIPT_PATH.to_string());
    env.entry("HOME".into()).or_insert_with(|| "/root".into());
    env.entry("LANG".into()).or_insert_with(|| "C.UTF-8".into());
    env
}

/// The log file of a step.
pub(crate) fn log_path(state_dir: &Path, step: &str) -> std::path::PathBuf {
    state_dir
        .join("logs")
        .join(format!("{}.log", step.replace([':', '/'], "_")))
}

fn job(
    ctx: &Ctx<'_>,
    step: &str,
    argv: Vec<String>,
    cwd: &Path,
) -> Result<Job, installer_proto::event::StepError> {
    let log = log_path(&ctx.paths.state, step);
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(step_err)?;
    }
    Ok(Job {
        step: step.to_string(),
        argv,
        cwd: cwd.to_path_buf(),
        env: script_env(&ctx.plan.env, ctx.root),
        timeout: Duration::from_secs(ctx.plan.timeouts.script_secs),
        log,
    })
}

/// Runs `rel` (a rootfs path such as `scripts/init-kube.sh`) with `args`.
pub(crate) fn run_script(ctx: &mut Ctx<'_>, step: &str, rel: &str, args: &[String]) -> StepResult {
    let script = ctx.paths.rootfs.join(rel);
    let mut argv = exec::shell_for(&script);
    argv.extend(args.iter().cloned());
    let cwd = ctx.paths.rootfs.join("scripts");
    let job = job(ctx, step, argv, &cwd)?;
    run_tracked(ctx.journal, job, ctx.sink)?;
    Ok(Written::default())
}

/// Runs a Plugin's shell text with `/bin/sh -c`, cwd at the rootfs.
pub(crate) fn run_plugin(ctx: &mut Ctx<'_>, step: &str, data: &str) -> StepResult {
    let argv = vec!["/bin/sh".to_string(), "-c".to_string(), data.to_string()];
    let cwd = ctx.paths.rootfs.clone();
    let job = job(ctx, step, argv, &cwd)?;
    run_tracked(ctx.journal, job, ctx.sink)?;
    Ok(Written::default())
}

/// Runs `job` with its processes recorded in the journal while they run (group id and a
/// token in their environment), so that the next agent can kill what a crash left behind.
pub(crate) fn run_tracked(
    journal: &mut Journal,
    mut job: Job,
    sink: &dyn Sink,
) -> Result<(), StepError> {
    let token = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    job.env.insert(exec::guard::TOKEN_VAR.into(), token.clone());
    let mut record_error = None;
    let result = exec::run(&job, sink, &mut |pgid| {
        let running = Running {
            step: job.step.clone(),
            pgid,
            token: token.clone(),
        };
        if let Err(e) = journal.update(|r| r.running = Some(running)) {
            record_error = Some(e);
        }
    });
    let cleared = journal.update(|r| r.running = None);
    if let Some(e) = record_error {
        return Err(step_err(e));
    }
    cleared.map_err(step_err)?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_get_the_shell_name_keys_and_templates_keep_the_others() {
        let mut env = Env::new();
        env.insert("PodCIDR".into(), "100.64.0.0/10".into());
        env.insert("etcd-dir".into(), "/data/etcd".into());
        let got = script_env(&env, &HostRoot::real());
        assert_eq!(got["PodCIDR"], "100.64.0.0/10");
        assert!(!got.contains_key("etcd-dir"), "{got:?}");
        assert_eq!(got["InstallRoot"], "");
    }
}
