//! Recording what steps did, and checking it still holds.

use super::*;

#[test]
fn record_notes_what_the_step_started_and_enabled() {
    let before = state(&["cron.service"], &["cron.service"]);
    let after = state(
        &["cron.service", "containerd.service", "kubelet.service"],
        &["cron.service", "containerd.service", "fstrim.timer"],
    );
    let mut c = UnitChanges::default();
    c.record("init", &before, &after);
    let want = changes(&[
        ("containerd.service", rec("init", true, true)),
        ("fstrim.timer", rec("init", false, true)),
        ("kubelet.service", rec("init", true, false)),
    ]);
    assert_eq!(c, want);
}

#[test]
fn record_leaves_alone_units_that_were_active_before() {
    // docker was running before the step; the step enabling it does not make it ours.
    let before = state(&["docker.service", "sshd.service"], &[]);
    let after = state(&["docker.service", "sshd.service"], &["docker.service"]);
    let mut c = UnitChanges::default();
    c.record("init", &before, &after);
    assert!(c.is_empty(), "{c:?}");
}

#[test]
fn record_keeps_the_first_step_and_adds_flags() {
    let mut c = UnitChanges::default();
    c.record("first", &state(&[], &[]), &state(&[], &["x.service"]));
    c.record(
        "second",
        &state(&[], &["x.service"]),
        &state(&["x.service"], &["x.service"]),
    );
    assert_eq!(c, changes(&[("x.service", rec("first", true, true))]));
    // Running the step again with everything already up changes nothing.
    let up = state(&["x.service"], &["x.service"]);
    c.record("second", &up, &up);
    assert_eq!(c, changes(&[("x.service", rec("first", true, true))]));
}

#[test]
fn the_record_survives_the_journal_and_old_journals_read_as_empty() {
    let c = changes(&[("a@1.service", rec("init", true, false))]);
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<UnitChanges>(&json).unwrap(), c);
    assert!(
        serde_json::from_str::<UnitChanges>("{}")
            .unwrap()
            .is_empty()
    );
    let terse = r#"{"units":{"a.service":{"step":"s","started":true}}}"#;
    let read: UnitChanges = serde_json::from_str(terse).unwrap();
    assert_eq!(read, changes(&[("a.service", rec("s", true, false))]));
}

#[test]
fn drift_names_a_stopped_unit_and_asks_once_for_the_whole_step() {
    let sd = RecordingFake::with_state(state(&["a.service", "b.service", "c.service"], &[]));
    let c = changes(&[
        ("a.service", rec("init", true, false)),
        ("b.service", rec("init", true, false)),
        ("c.service", rec("other", true, false)),
    ]);
    assert_eq!(c.drift("init", &sd).unwrap(), None);
    assert_eq!(
        sd.calls(),
        vec![Call::IsActive(list(&["a.service", "b.service"]))]
    );
    sd.clear_calls();
    sd.stopped_behind_our_back("b.service");
    assert_eq!(
        c.drift("init", &sd).unwrap().as_deref(),
        Some("b.service is not active")
    );
    assert_eq!(
        sd.calls(),
        vec![Call::IsActive(list(&["a.service", "b.service"]))]
    );
    // Another step's unit stopping is not this step's drift.
    sd.start("b.service");
    sd.stopped_behind_our_back("c.service");
    assert_eq!(c.drift("init", &sd).unwrap(), None);
}

#[test]
fn drift_names_a_disabled_unit() {
    let sd = RecordingFake::with_state(state(&["a.service"], &["a.service"]));
    let c = changes(&[("a.service", rec("init", true, true))]);
    assert_eq!(c.drift("init", &sd).unwrap(), None);
    sd.disabled_behind_our_back("a.service");
    assert_eq!(
        c.drift("init", &sd).unwrap().as_deref(),
        Some("a.service is not enabled")
    );
    let a = list(&["a.service"]);
    let once = [Call::IsActive(a.clone()), Call::IsEnabled(a)];
    assert_eq!(sd.calls(), [once.clone(), once].concat());
}

#[test]
fn drift_of_a_step_without_units_asks_nothing() {
    let sd = RecordingFake::new();
    let c = changes(&[("a.service", rec("other", true, true))]);
    assert_eq!(c.drift("init", &sd).unwrap(), None);
    assert_eq!(sd.calls(), vec![]);
}

#[test]
fn drift_passes_on_a_failed_question() {
    let sd = RecordingFake::with_state(state(&["a.service"], &[]));
    sd.fail_on(Call::IsActive(list(&["a.service"])));
    let c = changes(&[("a.service", rec("init", true, false))]);
    assert!(c.drift("init", &sd).is_err());
}
