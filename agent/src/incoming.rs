//! Files still arriving while the steps run (SPEC §5.3: a step starts as soon as its own
//! inputs are in place). The receiving side marks each file once it is verified; a step
//! waits only for the files it needs ([`needs`]), and those are then moved into the rootfs
//! copy. A transfer that fails wakes every waiting step with the reason.

use installer_proto::plan::StepKind;
use installer_proto::rootfs::is_template;
use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex, MutexGuard};

/// What has arrived of the files a host is being sent.
#[derive(Debug, Default)]
pub(crate) struct Arrivals {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Not arrived yet.
    pending: BTreeSet<String>,
    /// Arrived and verified, not yet moved into place.
    arrived: BTreeSet<String>,
    /// Why the transfer stopped, when it did before everything arrived.
    failed: Option<String>,
}

impl Arrivals {
    /// Expects `wanted`.
    pub(crate) fn new(wanted: &[String]) -> Arrivals {
        Arrivals {
            state: Mutex::new(State {
                pending: wanted.iter().cloned().collect(),
                ..State::default()
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent under every update; a panicked holder leaves it usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `path` arrived and matched the plan.
    pub(crate) fn arrived(&self, path: &str) {
        let mut s = self.lock();
        if s.pending.remove(path) {
            s.arrived.insert(path.to_string());
        }
        self.changed.notify_all();
    }

    /// The transfer stopped for `why`; what is still pending will not come.
    pub(crate) fn fail(&self, why: String) {
        let mut s = self.lock();
        if !s.pending.is_empty() && s.failed.is_none() {
            s.failed = Some(why);
        }
        self.changed.notify_all();
    }

    /// Whether `path` is still to come.
    pub(crate) fn is_pending(&self, path: &str) -> bool {
        self.lock().pending.contains(path)
    }

    /// Waits until no pending path satisfies `needed`; the reason when the transfer stopped
    /// first.
    pub(crate) fn wait_for(&self, needed: &dyn Fn(&str) -> bool) -> Result<(), String> {
        let mut s = self.lock();
        loop {
            let Some(first) = s.pending.iter().find(|p| needed(p)).cloned() else {
                return Ok(());
            };
            if let Some(why) = &s.failed {
                return Err(format!(
                    "{first} and {} other file(s) did not arrive: {why}",
                    s.pending.len() - 1
                ));
            }
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The verified files not yet moved into place; taken, so each is moved once.
    pub(crate) fn take_arrived(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().arrived)
            .into_iter()
            .collect()
    }

    /// Whether every file arrived.
    pub(crate) fn complete(&self) -> bool {
        self.lock().pending.is_empty()
    }
}

/// Whether a step of `kind` needs the rootfs file `path` in place before it starts.
/// `place-rootfs` places what is there and leaves the rest to come; the registry's trust and
/// the hosts file read none; `install-bin` needs `bin/`, rendering the templates; a script
/// may read any file, so it waits for all but the registry's storage, which only
/// `init-registry` uses — and that one waits for everything.
pub(crate) fn needs(kind: StepKind, path: &str) -> bool {
    match kind {
        StepKind::PlaceRootfs | StepKind::HostsFile | StepKind::RegistryTrust => false,
        StepKind::InstallBin => path.starts_with("bin/"),
        StepKind::RenderTemplates => is_template(path),
        StepKind::InitRegistry => true,
        StepKind::PreInitHost
        | StepKind::InitContainerRuntime
        | StepKind::InitKube
        | StepKind::PreHook
        | StepKind::PostInitHost => !path.starts_with("registry/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_step_waits_for_its_own_files_only_and_a_stopped_transfer_wakes_it() {
        let a = Arc::new(Arrivals::new(&[
            "bin/kubelet".into(),
            "registry/docker/x".into(),
        ]));
        let bin = |p: &str| needs(StepKind::InstallBin, p);
        let script = |p: &str| needs(StepKind::InitContainerRuntime, p);
        let waiter = {
            let a = a.clone();
            std::thread::spawn(move || a.wait_for(&bin))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "bin/kubelet is not there yet");
        a.arrived("bin/kubelet");
        assert_eq!(waiter.join().unwrap(), Ok(()));
        assert_eq!(
            a.wait_for(&script),
            Ok(()),
            "a script does not wait for registry/"
        );
        assert_eq!(a.take_arrived(), ["bin/kubelet"]);
        assert!(a.take_arrived().is_empty(), "taken once");
        assert!(!a.complete());

        let all = |p: &str| needs(StepKind::InitRegistry, p);
        let waiter = {
            let a = a.clone();
            std::thread::spawn(move || a.wait_for(&all))
        };
        a.fail("the stream broke".into());
        let err = waiter.join().unwrap().unwrap_err();
        assert_eq!(
            err,
            "registry/docker/x and 0 other file(s) did not arrive: the stream broke"
        );
    }
}
