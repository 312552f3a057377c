//! [`RecordingFake`]: a systemd in memory that remembers every call, so the bookkeeping can
//! be tested without a host (youki's habit: privileged calls behind a trait, a recording
//! fake for the tests).

use super::{Systemd, UnitState, UnitsError};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// One call made through the [`Systemd`] seam, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    /// [`Systemd::state`].
    State,
    /// [`Systemd::is_active`].
    IsActive(Vec<String>),
    /// [`Systemd::is_enabled`].
    IsEnabled(Vec<String>),
    /// [`Systemd::stop`].
    Stop(String),
    /// [`Systemd::disable`].
    Disable(String),
    /// [`Systemd::daemon_reload`].
    DaemonReload,
    /// [`Systemd::reset_failed`].
    ResetFailed(String),
}

/// A systemd in memory: its [`UnitState`] is what tests say it is (and what `stop` and
/// `disable` leave of it), and every call is kept in order.
#[derive(Debug, Default)]
pub(crate) struct RecordingFake {
    state: Mutex<UnitState>,
    calls: Mutex<Vec<Call>>,
    failing: Mutex<Vec<Call>>,
}

/// A poisoned lock only means another test thread panicked; the data is still what it was.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RecordingFake {
    /// A systemd with no active or enabled units.
    pub(crate) fn new() -> RecordingFake {
        RecordingFake::default()
    }

    /// A systemd in `state`.
    pub(crate) fn with_state(state: UnitState) -> RecordingFake {
        RecordingFake {
            state: Mutex::new(state),
            ..RecordingFake::default()
        }
    }

    /// Something (a script) started `unit`.
    pub(crate) fn start(&self, unit: &str) {
        lock(&self.state).active.insert(unit.to_string());
    }

    /// Something other than the agent stopped `unit` (it crashed, an admin stopped it).
    pub(crate) fn stopped_behind_our_back(&self, unit: &str) {
        lock(&self.state).active.remove(unit);
    }

    /// Something other than the agent disabled `unit`.
    pub(crate) fn disabled_behind_our_back(&self, unit: &str) {
        lock(&self.state).enabled.remove(unit);
    }

    /// The state now, without recording a call.
    pub(crate) fn current(&self) -> UnitState {
        lock(&self.state).clone()
    }

    /// From now on, a call equal to `call` fails (and changes nothing).
    pub(crate) fn fail_on(&self, call: Call) {
        lock(&self.failing).push(call);
    }

    /// From now on, every call succeeds again.
    pub(crate) fn heal(&self) {
        lock(&self.failing).clear();
    }

    /// Every call so far, in order.
    pub(crate) fn calls(&self) -> Vec<Call> {
        lock(&self.calls).clone()
    }

    /// Forgets the calls so far (to look only at what comes next).
    pub(crate) fn clear_calls(&self) {
        lock(&self.calls).clear();
    }

    /// Records `call`, then fails if it was told to.
    fn called(&self, call: Call) -> Result<(), UnitsError> {
        lock(&self.calls).push(call.clone());
        if lock(&self.failing).contains(&call) {
            return Err(UnitsError::Failed {
                command: format!("{call:?}"),
                status: "exit status: 1".into(),
                stderr: "told to fail".into(),
            });
        }
        Ok(())
    }
}

impl Systemd for RecordingFake {
    fn state(&self) -> Result<UnitState, UnitsError> {
        self.called(Call::State)?;
        Ok(self.current())
    }

    fn is_active(&self, units: &[String]) -> Result<BTreeMap<String, bool>, UnitsError> {
        self.called(Call::IsActive(units.to_vec()))?;
        let state = lock(&self.state);
        Ok(units
            .iter()
            .map(|u| (u.clone(), state.active.contains(u)))
            .collect())
    }

    fn is_enabled(&self, units: &[String]) -> Result<BTreeMap<String, bool>, UnitsError> {
        self.called(Call::IsEnabled(units.to_vec()))?;
        let state = lock(&self.state);
        Ok(units
            .iter()
            .map(|u| (u.clone(), state.enabled.contains(u)))
            .collect())
    }

    fn stop(&self, unit: &str) -> Result<(), UnitsError> {
        self.called(Call::Stop(unit.to_string()))?;
        lock(&self.state).active.remove(unit);
        Ok(())
    }

    fn disable(&self, unit: &str) -> Result<(), UnitsError> {
        self.called(Call::Disable(unit.to_string()))?;
        lock(&self.state).enabled.remove(unit);
        Ok(())
    }

    fn daemon_reload(&self) -> Result<(), UnitsError> {
        self.called(Call::DaemonReload)
    }

    fn reset_failed(&self, unit: &str) -> Result<(), UnitsError> {
        self.called(Call::ResetFailed(unit.to_string()))
    }
}
