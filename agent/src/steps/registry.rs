//! `sealer-registry` (SPEC §5.6): `init-registry.sh <port> <dataDir> <domain>` when the rootfs
//! has it, else the agent loads `images/registry.tar` into the host's runtime (docker,
//! nerdctl or ctr) and runs it on the host network with `<rootfs>/registry` mounted at
//! `/var/lib/registry`, serving TLS from `<rootfs>/certs` (placed by registry-trust) unless
//! the registry is insecure. Then wait until `https://<domain>:<port>/v2/` (`http` when
//! insecure) answers 200 or 401.

use super::{Ctx, StepResult, Written, step_err};
use crate::command::{CommandRunner, RealRunner};
use crate::exec::{self, Job};
use crate::registry_api::probe::Probe;
use crate::runtime::RegistryRun;
use crate::runtime::Runtime;
use installer_proto::event::{Event, StepError};
use installer_proto::plan::REGISTRY_CONTAINER;
use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The registry image inside the rootfs.
pub(crate) const REGISTRY_TAR: &str = "images/registry.tar";

/// Runs the step.
pub(crate) fn run(ctx: &mut Ctx<'_>, step: &str, script: Option<&str>) -> StepResult {
    // Write-ahead: clean must know a registry may exist even if this step dies half-way.
    ctx.journal
        .update(|r| r.registry_started = true)
        .map_err(step_err)?;
    let port = ctx.plan.registry.port.to_string();
    let data_dir = format!("{}/registry", ctx.paths.host_rootfs);
    match script {
        Some(rel) => {
            let args = vec![port, data_dir, ctx.plan.registry.domain.clone()];
            super::scripts::run_script(ctx, step, rel, &args)?;
        }
        None if ctx.root.is_real() => start_builtin(ctx, step, &RealRunner)?,
        None => {
            ctx.sink.event(Event::Warning {
                message:
                    "--root mode: not starting sealer-registry (no container runtime is touched)"
                        .into(),
            });
            return Ok(Written::default());
        }
    }
    if !ctx.root.is_real() {
        ctx.sink.event(Event::Warning {
            message: "--root mode: not waiting for the registry to answer".into(),
        });
        return Ok(Written::default());
    }
    wait_for_v2(ctx, &RealRunner)?;
    Ok(Written::default())
}

/// Where the registry container reads the TLS material (`<rootfs>/certs`, mounted read-only).
const CONTAINER_CERTS: &str = "/certs";

/// Where it reads the htpasswd file (`<rootfs>/etc/registry_htpasswd`, read-only), as
/// sealer's `init-registry.sh` mounts it.
const CONTAINER_HTPASSWD: &str = "/htpasswd";

/// Loads and runs the registry image with the host's runtime unless the container runs
/// already — or, when this step ran before (its inputs or the registry changed since),
/// replaces it, so a new certificate is served. With TLS material the registry serves TLS
/// from `<rootfs>/certs`. The questions go through `cmd`; the start commands run as tracked
/// jobs of the step (logged, timed, killed with the step), like its scripts.
fn start_builtin(ctx: &mut Ctx<'_>, step: &str, cmd: &dyn CommandRunner) -> Result<(), StepError> {
    let runtime = Runtime::detect().ok_or_else(|| {
        step_err("no container runtime found (docker, nerdctl or ctr); the rootfs's init-container-runtime.sh must install one before the registry can start")
    })?;
    let tar = ctx.paths.rootfs.join(REGISTRY_TAR);
    let image = registry_image_name(&tar).map_err(step_err)?;
    let data = ctx.paths.rootfs.join("registry");
    std::fs::create_dir_all(&data).map_err(step_err)?;
    let reg = &ctx.plan.registry;
    let mut run = RegistryRun {
        tar: &tar,
        image: &image,
        data: &data,
        env: vec![format!("REGISTRY_HTTP_ADDR=0.0.0.0:{}", reg.port)],
        read_only: Vec::new(),
    };
    if reg.tls.is_some() {
        let certs = format!("{CONTAINER_CERTS}/{}", reg.domain);
        run.env
            .push(format!("REGISTRY_HTTP_TLS_CERTIFICATE={certs}.crt"));
        run.env.push(format!("REGISTRY_HTTP_TLS_KEY={certs}.key"));
        run.read_only
            .push((ctx.paths.rootfs.join("certs"), CONTAINER_CERTS));
    }
    if reg.auth.is_some() {
        run.env.push("REGISTRY_AUTH=htpasswd".into());
        run.env
            .push(format!("REGISTRY_AUTH_HTPASSWD_PATH={CONTAINER_HTPASSWD}"));
        run.env
            .push("REGISTRY_AUTH_HTPASSWD_REALM=sealer-registry".into());
        run.read_only.push((
            ctx.paths.rootfs.join("etc/registry_htpasswd"),
            CONTAINER_HTPASSWD,
        ));
    }
    let ran_before = ctx.journal.record.steps.contains_key(step);
    if ran_before && runtime.is_running(cmd, REGISTRY_CONTAINER) {
        runtime.remove(cmd, REGISTRY_CONTAINER).map_err(step_err)?;
    }
    for argv in runtime.commands_to_start(cmd, &run) {
        let log = super::scripts::log_path(&ctx.paths.state, step);
        let job = Job {
            step: step.to_string(),
            argv,
            cwd: ctx.paths.rootfs.clone(),
            env: super::scripts::script_env(&ctx.plan.env, ctx.root),
            timeout: Duration::from_secs(ctx.plan.timeouts.script_secs),
            log,
        };
        super::scripts::run_tracked(ctx.journal, job, ctx.sink)?;
    }
    Ok(())
}

/// The image name recorded in a docker-save style tar (`manifest.json` `RepoTags[0]`).
pub(crate) fn registry_image_name(tar_path: &std::path::Path) -> Result<String, String> {
    let file = std::fs::File::open(tar_path).map_err(|e| format!("{}: {e}", tar_path.display()))?;
    let mut archive = tar::Archive::new(file);
    let entries = archive
        .entries()
        .map_err(|e| format!("{}: {e}", tar_path.display()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{}: {e}", tar_path.display()))?;
        let is_manifest = entry
            .path()
            .map(|p| p.to_string_lossy() == "manifest.json")
            .unwrap_or(false);
        if is_manifest {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| format!("{}: manifest.json: {e}", tar_path.display()))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("{}: manifest.json: {e}", tar_path.display()))?;
            if let Some(tag) = v[0]["RepoTags"][0].as_str() {
                return Ok(tag.to_string());
            }
        }
    }
    Err(format!(
        "{}: no manifest.json with RepoTags; build the registry image with `docker save NAME:TAG`",
        tar_path.display()
    ))
}

/// Where `<domain>:<port>` points: the IP the plan's hosts entries give the domain, else DNS.
fn registry_addr(ctx: &Ctx<'_>) -> Option<SocketAddr> {
    let reg = &ctx.plan.registry;
    let ip = ctx
        .plan
        .hosts_entries
        .iter()
        .find(|e| e.names.iter().any(|n| n == &reg.domain))
        .map(|e| e.ip.clone());
    match ip {
        Some(ip) => format!("{ip}:{}", reg.port).parse().ok(),
        None => (reg.domain.as_str(), reg.port)
            .to_socket_addrs()
            .ok()?
            .next(),
    }
}

/// Waits until the registry's `/v2/` answers 200 or 401 (200 when the plan has credentials,
/// which the probe sends) — over TLS verified with the cluster CA when the plan has TLS
/// material — and fails with the container's last log lines if it
/// does not within the plan's registry timeout.
fn wait_for_v2(ctx: &Ctx<'_>, cmd: &dyn CommandRunner) -> Result<(), StepError> {
    let reg = &ctx.plan.registry;
    let url = reg.v2_url();
    let probe = Probe::new(reg).map_err(step_err)?;
    let deadline = Instant::now() + Duration::from_secs(ctx.plan.timeouts.registry_secs);
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match registry_addr(ctx) {
            Some(addr) => match probe.once(addr) {
                // Without credentials, 401 is a registry that answers (it may require
                // auth of its own); with them, it must let them in.
                Ok(200) => return Ok(()),
                Ok(401) if reg.auth.is_none() => return Ok(()),
                Ok(401) => {
                    last = "HTTP 401: the registry refused the Clusterfile's username and password"
                        .into()
                }
                Ok(code) => last = format!("HTTP {code}"),
                Err(why) => last = why,
            },
            None => last = format!("{} does not resolve", reg.domain),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let tail = Runtime::detect()
        .map(|rt| rt.logs_tail(cmd, REGISTRY_CONTAINER, exec::TAIL_LINES))
        .unwrap_or_default();
    Err(StepError {
        message: format!(
            "{url} did not answer {} within {} s ({last}); the lines below are {REGISTRY_CONTAINER}'s last log lines",
            if reg.auth.is_some() {
                "200"
            } else {
                "200 or 401"
            },
            ctx.plan.timeouts.registry_secs
        ),
        exit_code: None,
        tail,
    })
}
