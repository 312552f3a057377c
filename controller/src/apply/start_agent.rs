//! Phase "start-agent": find the host's architecture, upload our agent build only when the
//! login user lacks that exact build, and start it as root — through a launcher that runs
//! on the privileged side, copies the upload into a root-owned directory, checks the copy's
//! sha256 there and executes that copy. Anything running as the login user can replace the
//! upload at any time; it can never change what root runs (SPEC §7). Then the handshake and
//! the host's facts (phase "preflight" begins with them).

use super::connect::Reached;
use super::host::{AgentIo, Connected, HostFail, RunCtx};
use crate::agent::session::AgentSession;
use crate::output::event::{Phase, RunEvent};
#[cfg(test)]
use installer_proto::plan::{AGENT_UPLOAD_VAR, ROOT_AGENT_DIR};

/// The launcher, run by root: `sh -c LAUNCH launch <upload> <sha256> <agent args…>`. Its
/// text is fixed; the paths and the hash arrive as positional parameters, never pasted.
/// The copy is made and hashed inside a root-only directory, so what is executed is what
/// was checked. `INSTALLER_AGENT_UPLOAD` tells the agent which upload to delete on clean.
pub const LAUNCH: &str = r#"set -eu
src=$1; want=$2; shift 2
dir=/var/lib/installer-agent/bin
umask 077
mkdir -p "$dir"
chown 0:0 "$dir"; chmod 0700 "$dir"
dst="$dir/installer-agent-$(printf %.16s "$want")"
have=$(sha256sum "$dst" 2>/dev/null | cut -d' ' -f1) || have=
if [ "$have" != "$want" ]; then
  rm -f "$dst.tmp"
  cp "$src" "$dst.tmp"
  got=$(sha256sum "$dst.tmp" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    rm -f "$dst.tmp"
    echo "the uploaded agent $src has sha256 $got, not $want: it changed after upload; refusing to run it" >&2
    exit 126
  fi
  chmod 0700 "$dst.tmp"
  mv -f "$dst.tmp" "$dst"
fi
INSTALLER_AGENT_UPLOAD=$src exec "$dst" "$@""#;

/// Starts the agent on a reached host.
pub async fn start(reached: Reached, ctx: &RunCtx) -> Result<Connected, HostFail> {
    let Reached { host, session } = reached;
    let name = host.ip.clone();
    let fail = |phase: Phase, reason: String| HostFail::Failed {
        phase,
        step: None,
        reason,
    };
    ctx.reporter.emit(RunEvent::PhaseStarted {
        host: name.clone(),
        phase: Phase::StartAgent,
    });
    let uname = session
        .exec("uname -m")
        .await
        .map_err(|e| fail(Phase::StartAgent, format!("running `uname -m`: {e}")))?;
    let arch = String::from_utf8_lossy(&uname.stdout).trim().to_string();
    if uname.status != 0 || arch.is_empty() {
        return Err(fail(
            Phase::StartAgent,
            format!(
                "`uname -m` failed: {}",
                String::from_utf8_lossy(&uname.stderr).trim()
            ),
        ));
    }
    let build = ctx
        .agents
        .for_arch(&arch)
        .map_err(|e| fail(Phase::StartAgent, e.to_string()))?;
    let (remote, _sent) = session
        .upload_if_changed(&build.path, &build.remote_rel_path())
        .await
        .map_err(|e| fail(Phase::StartAgent, format!("uploading the agent: {e}")))?;
    let mut argv = vec![
        "/bin/sh",
        "-c",
        LAUNCH,
        "installer-agent-launch",
        remote.as_str(),
        build.sha256.as_str(),
        "serve",
    ];
    let root_arg;
    if let Some(root) = &ctx.agent_root {
        root_arg = root.clone();
        argv.push("--root");
        argv.push(&root_arg);
    }
    let process = session
        // --sudo-password-env wins; otherwise the host's SSH password is also its sudo
        // password (sealer's convention for spec.ssh.passwd).
        .spawn_root(
            &argv,
            ctx.sudo_password.as_ref().or(host.ssh.passwd.as_ref()),
        )
        .await
        .map_err(|e| fail(Phase::StartAgent, e.to_string()))?;
    let (reader, writer, process) = process.into_io();
    let mut agent: AgentIo = AgentSession::handshake(reader, writer)
        .await
        .map_err(|e| fail(Phase::StartAgent, format!("{e}{}", process.stderr_hint())))?;
    ctx.reporter.emit(RunEvent::PhaseStarted {
        host: name.clone(),
        phase: Phase::Preflight,
    });
    let facts = agent
        .facts(&ctx.data_root, &ctx.cluster)
        .await
        .map_err(|e| fail(Phase::Preflight, e.to_string()))?;
    Ok(Connected {
        host,
        arch,
        ssh: session,
        agent,
        process,
        facts,
        stats: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launcher_takes_its_values_as_parameters_and_runs_the_checked_copy() {
        // Values never appear in the script text; the copy root runs is the one it hashed.
        assert!(LAUNCH.contains(r#"src=$1; want=$2"#));
        assert!(LAUNCH.contains(&format!("dir={ROOT_AGENT_DIR}\n")));
        assert!(LAUNCH.contains(&format!("{AGENT_UPLOAD_VAR}=$src exec")));
        let check = LAUNCH
            .find(r#"got=$(sha256sum "$dst.tmp""#)
            .unwrap_or(usize::MAX);
        let exec = LAUNCH.find(r#"exec "$dst""#).unwrap_or(0);
        assert!(check < exec);
        assert!(!LAUNCH.contains(r#"exec "$src""#));
    }
}
