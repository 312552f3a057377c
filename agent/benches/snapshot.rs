//! Cost of watching a script step on this machine's real `/` with the default config:
//! a cold `before()` (the store filled from scratch), a warm `before()`, and `after()`
//! with nothing changed, each the median of a few runs. Read-only on the host: the store
//! and the saved snapshot live in a temp dir.
//!
//! `cargo bench -p installer-agent --bench snapshot`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: a panic is the report

use installer_agent::root::HostRoot;
use installer_agent::watch::{Changes, Kind, Snapshot, WatchConfig, Watcher};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let root = HostRoot::real();
    let cfg = WatchConfig::default();
    let runs = 5;

    let mut cold = Vec::new();
    for _ in 0..3 {
        let store = tempfile::tempdir().unwrap();
        let mut w = Watcher::new(&root, &cfg, store.path().to_path_buf(), Vec::new()).unwrap();
        let t = Instant::now();
        w.before().unwrap();
        cold.push(t.elapsed());
    }

    let store = tempfile::tempdir().unwrap();
    let mut w = Watcher::new(&root, &cfg, store.path().to_path_buf(), Vec::new()).unwrap();
    let mut snap = w.before().unwrap();
    let mut warm = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        snap = w.before().unwrap();
        warm.push(t.elapsed());
    }
    let mut after = Vec::new();
    let mut changed = 0;
    for _ in 0..runs {
        let mut changes = Changes::default();
        let t = Instant::now();
        let s = w.after(&snap, "bench", &mut changes).unwrap();
        after.push(t.elapsed());
        changed = changed.max(s.created + s.modified + s.deleted);
    }
    let file = store.path().join("before.snap");
    let mut save = Vec::new();
    let mut load = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        snap.save(&file).unwrap();
        save.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(Snapshot::load(&file).unwrap().len(), snap.len());
        load.push(t.elapsed());
    }

    let (warm_copy, after_copy) = (warm.clone(), after.clone());
    let count = |k: Kind| snap.iter().filter(|(_, m)| m.kind == k).count();
    let (objects, bytes) = std::fs::read_dir(store.path().join("objects"))
        .unwrap()
        .flatten()
        .fold((0, 0), |(n, b), e| {
            (n + 1, b + e.metadata().map_or(0, |m| m.len()))
        });
    println!(
        "watched trees of / with the default config: {} paths",
        snap.len()
    );
    println!(
        "  files {}, dirs {}, symlinks {}, other {}",
        count(Kind::File),
        count(Kind::Dir),
        count(Kind::Symlink),
        count(Kind::Other)
    );
    println!(
        "  store: {objects} copies, {:.1} MiB",
        bytes as f64 / 1048576.0
    );
    println!(
        "  snapshot file: {:.1} MiB",
        std::fs::metadata(&file).unwrap().len() as f64 / 1048576.0
    );
    println!("cold before() (store fill): {}", ms(median(cold)));
    println!("warm before():              {}", ms(median(warm.clone())));
    println!(
        "after() (changed {changed}):        {}",
        ms(median(after.clone()))
    );
    println!(
        "before()+after() per step:  {}",
        ms(median(warm) + median(after))
    );
    let per = (median(warm_copy) + median(after_copy)).as_secs_f64() / snap.len() as f64;
    println!(
        "  = {:.2} µs per path; {:.0} ms per step for 40,000 paths",
        per * 1e6,
        per * 40_000.0 * 1000.0
    );
    println!(
        "snapshot save: {}, load: {}",
        ms(median(save)),
        ms(median(load))
    );
}
