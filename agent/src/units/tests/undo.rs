//! Undoing what steps did.

use super::*;

#[test]
fn undo_stops_then_disables_and_reloads_once() {
    let sd = RecordingFake::with_state(state(
        &["a.service", "b.socket", "keep.service"],
        &["a.service", "b.socket"],
    ));
    let mut c = changes(&[
        ("a.service", rec("init", true, true)),
        ("b.socket", rec("net", true, true)),
    ]);
    let reports = undo_all(&mut c, &sd);
    assert_eq!(
        reports,
        vec![undone("a.service", "init"), undone("b.socket", "net")]
    );
    assert!(c.is_empty(), "{c:?}");
    let both = list(&["a.service", "b.socket"]);
    let a = "a.service".to_string();
    let b = "b.socket".to_string();
    assert_eq!(
        sd.calls(),
        vec![
            Call::IsActive(both.clone()),
            Call::IsEnabled(both),
            Call::Stop(a.clone()),
            Call::ResetFailed(a.clone()),
            Call::Disable(a),
            Call::Stop(b.clone()),
            Call::ResetFailed(b.clone()),
            Call::Disable(b),
            Call::DaemonReload,
        ]
    );
    assert_eq!(sd.current(), state(&["keep.service"], &[]));
}

#[test]
fn undo_only_reverses_what_the_step_did() {
    // Started but not enabled by the step: stopping it must not disable it.
    let sd = RecordingFake::with_state(state(&["a.service"], &["a.service"]));
    let mut c = changes(&[("a.service", rec("init", true, false))]);
    undo_all(&mut c, &sd);
    assert!(!sd.calls().contains(&Call::Disable("a.service".into())));
    assert_eq!(sd.current(), state(&[], &["a.service"]));
}

#[test]
fn units_already_undone_need_no_orders() {
    // The rootfs's clean scripts already stopped and disabled it.
    let sd = RecordingFake::new();
    let mut c = changes(&[("a.service", rec("init", true, true))]);
    let reports = undo_all(&mut c, &sd);
    assert_eq!(reports, vec![undone("a.service", "init")]);
    assert!(c.is_empty());
    let a = list(&["a.service"]);
    assert_eq!(
        sd.calls(),
        vec![Call::IsActive(a.clone()), Call::IsEnabled(a)]
    );
}

#[test]
fn a_failed_stop_stays_recorded_and_the_next_undo_retries_it() {
    let sd = RecordingFake::with_state(state(&["a.service", "b.service"], &["a.service"]));
    sd.fail_on(Call::Stop("a.service".into()));
    let mut c = changes(&[
        ("a.service", rec("init", true, true)),
        ("b.service", rec("init", true, false)),
    ]);
    let reports = undo_all(&mut c, &sd);
    assert!(
        matches!(&reports[0], UnitReport::Failed { unit, reason, .. }
            if unit == "a.service" && reason.contains("told to fail")),
        "{reports:?}"
    );
    assert_eq!(reports[1], undone("b.service", "init"));
    // The disable did happen and is not redone; the stop is still owed.
    assert_eq!(c, changes(&[("a.service", rec("init", true, false))]));
    assert_eq!(sd.current(), state(&["a.service"], &[]));
    assert_eq!(
        sd.calls()
            .iter()
            .filter(|c| **c == Call::DaemonReload)
            .count(),
        1
    );

    sd.heal();
    sd.clear_calls();
    let reports = undo_all(&mut c, &sd);
    assert_eq!(reports, vec![undone("a.service", "init")]);
    assert!(c.is_empty());
    let a = "a.service".to_string();
    assert_eq!(
        sd.calls(),
        vec![
            Call::IsActive(vec![a.clone()]),
            Call::Stop(a.clone()),
            Call::ResetFailed(a),
            Call::DaemonReload,
        ]
    );
}

#[test]
fn a_failed_reset_does_not_fail_the_undo() {
    let sd = RecordingFake::with_state(state(&["a.service"], &[]));
    sd.fail_on(Call::ResetFailed("a.service".into()));
    let mut c = changes(&[("a.service", rec("init", true, false))]);
    assert_eq!(undo_all(&mut c, &sd), vec![undone("a.service", "init")]);
    assert!(c.is_empty());
}

#[test]
fn not_knowing_whether_a_unit_runs_keeps_it_recorded() {
    let sd = RecordingFake::with_state(state(&["a.service"], &[]));
    sd.fail_on(Call::IsActive(list(&["a.service"])));
    let mut c = changes(&[("a.service", rec("init", true, false))]);
    let reports = undo_all(&mut c, &sd);
    assert!(
        matches!(&reports[..], [UnitReport::Failed { reason, .. }]
            if reason.contains("checking whether it is active")),
        "{reports:?}"
    );
    assert_eq!(c, changes(&[("a.service", rec("init", true, false))]));
    assert_eq!(sd.calls(), vec![Call::IsActive(list(&["a.service"]))]);
}

#[test]
fn a_failed_reload_is_reported_after_the_units() {
    let sd = RecordingFake::with_state(state(&["a.service"], &[]));
    sd.fail_on(Call::DaemonReload);
    let mut c = changes(&[("a.service", rec("init", true, false))]);
    let reports = undo_all(&mut c, &sd);
    assert_eq!(reports[0], undone("a.service", "init"));
    assert!(
        matches!(reports[1], UnitReport::ReloadFailed { .. }),
        "{reports:?}"
    );
    assert!(c.is_empty());
}

#[test]
fn an_empty_record_calls_nothing() {
    let sd = RecordingFake::with_state(state(&["a.service"], &["a.service"]));
    let reports = undo_all(&mut UnitChanges::default(), &sd);
    assert_eq!(reports, vec![]);
    assert_eq!(sd.calls(), vec![]);
}

#[test]
fn a_unit_the_step_enabled_is_stopped_when_it_runs() {
    // The step's after-snapshot caught it still starting: recorded enabled, not started.
    let sd = RecordingFake::with_state(state(&["d.service"], &["d.service"]));
    let mut c = changes(&[("d.service", rec("init-kube", false, true))]);
    let reports = undo_all(&mut c, &sd);
    assert_eq!(reports, vec![undone("d.service", "init-kube")]);
    assert!(sd.calls().contains(&Call::Stop("d.service".into())));
    assert_eq!(sd.current(), state(&[], &[]));
}
