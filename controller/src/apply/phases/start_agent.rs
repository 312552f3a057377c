//! Phase "start-agent": find the host's architecture, upload our agent build only when the
//! login user lacks that exact build, and start it as root — through a launcher that runs
//! on the privileged side, copies the upload into a root-owned directory, checks the copy's
//! sha256 there and executes that copy. Anything running as the login user can replace the
//! upload at any time; it can never change what root runs (SPEC §7). Then the handshake;
//! the host's facts come next, in phase "preflight" ([`super::preflight`]).

use crate::agent::link::{AgentIo, AgentReader, AgentWriter, SshLink};
use crate::agent::session::AgentSession;
use crate::apply::driver::{HostPhase, HostResult, Run};
use crate::apply::host::{HostFail, Reached, Started};
use crate::output::event::Phase;
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

/// Uploads (when needed) and starts the agent on each reached host.
pub struct StartAgent;

impl HostPhase for StartAgent {
    type In = Reached;
    type Out = Started;
    const PHASE: Phase = Phase::StartAgent;

    async fn run(&self, run: &Run, reached: Reached) -> HostResult<Started> {
        Ok(start(reached, run).await?)
    }
}

async fn start(reached: Reached, run: &Run) -> Result<Started, HostFail> {
    let ctx = &run.ctx;
    let Reached { host, session } = reached;
    let fail = |reason: String| HostFail::Failed {
        phase: Phase::StartAgent,
        step: None,
        reason,
    };
    let uname = session
        .exec("uname -m")
        .await
        .map_err(|e| fail(format!("running `uname -m`: {e}")))?;
    let arch = String::from_utf8_lossy(&uname.stdout).trim().to_string();
    if uname.status != 0 || arch.is_empty() {
        return Err(fail(format!(
            "`uname -m` failed: {}",
            String::from_utf8_lossy(&uname.stderr).trim()
        )));
    }
    let build = ctx
        .agents
        .for_arch(&arch)
        .map_err(|e| fail(e.to_string()))?;
    let (remote, _sent) = session
        .upload_if_changed(&build.path, &build.remote_rel_path())
        .await
        .map_err(|e| fail(format!("uploading the agent: {e}")))?;
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
        .map_err(|e| fail(e.to_string()))?;
    let (reader, writer, process) = process.into_io();
    let (reader, writer): (AgentReader, AgentWriter) = (Box::new(reader), writer);
    let agent: AgentIo = AgentSession::handshake(reader, writer)
        .await
        .map_err(|e| fail(format!("{e}{}", process.stderr_hint())))?;
    Ok(Started {
        host,
        arch,
        agent,
        link: Box::new(SshLink { session, process }),
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
