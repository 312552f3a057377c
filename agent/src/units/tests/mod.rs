//! The bookkeeping ([`UnitChanges`]) against the recording fake, and [`RealSystemd`] against
//! a stand-in `systemctl`.

use super::*;

mod record;
mod systemctl;
mod undo;

fn names(units: &[&str]) -> BTreeSet<String> {
    units.iter().map(|u| u.to_string()).collect()
}

fn state(active: &[&str], enabled: &[&str]) -> UnitState {
    UnitState {
        active: names(active),
        enabled: names(enabled),
    }
}

fn rec(step: &str, started: bool, enabled: bool) -> UnitRecord {
    UnitRecord {
        step: step.into(),
        started,
        enabled,
    }
}

fn changes(units: &[(&str, UnitRecord)]) -> UnitChanges {
    UnitChanges {
        units: units
            .iter()
            .map(|(u, r)| (u.to_string(), r.clone()))
            .collect(),
    }
}

fn list(units: &[&str]) -> Vec<String> {
    units.iter().map(|u| u.to_string()).collect()
}

fn undo_all(c: &mut UnitChanges, sd: &dyn Systemd) -> Vec<UnitReport> {
    let mut reports = Vec::new();
    c.undo(sd, &mut |r| reports.push(r));
    reports
}

fn undone(unit: &str, step: &str) -> UnitReport {
    UnitReport::Undone {
        unit: unit.into(),
        step: step.into(),
    }
}

#[test]
fn a_sandbox_has_no_systemd() {
    let sd = for_host(&crate::root::HostRoot::at(std::path::Path::new(
        "/nonexistent",
    )));
    assert_eq!(sd.state().unwrap(), UnitState::default());
    let mut c = changes(&[("a.service", rec("init", true, true))]);
    assert_eq!(
        c.drift("init", sd.as_ref()).unwrap().as_deref(),
        Some("a.service is not active")
    );
    assert_eq!(
        undo_all(&mut c, sd.as_ref()),
        vec![undone("a.service", "init")]
    );
}
