//! What a re-apply costs on the controller before any byte moves: resolving and merging a
//! large rootfs (cold: every file hashed; warm: the hash cache), the manifest digest, and
//! rendering a template. Run with `cargo bench -p installer --bench reapply`; it fails when
//! a target is missed.
//!
//! Targets (on a 2-core machine): a warm merge of a 200 MB / 2,000-file rootfs under 250 ms;
//! rendering a 5 KB template under 200 µs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the report

use installer::rootfs;
use installer_proto::env::Env;
use std::time::{Duration, Instant};

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let work = tempfile::tempdir().unwrap();
    let image = work.path().join("rootfs");
    // 2,000 files of 100 KiB: 200 MB, spread over 20 directories.
    let block: Vec<u8> = (0..100 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for d in 0..20 {
        let dir = image.join(format!("images/d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            let mut data = block.clone();
            data[0] = d as u8;
            data[1] = f as u8;
            std::fs::write(dir.join(format!("f{f:03}")), data).unwrap();
        }
    }
    let cache = work.path().join("cache");
    let arch = installer_proto::rootfs::arch_dir_for(std::env::consts::ARCH).unwrap();

    // Files younger than two seconds are not remembered (their mtime may still change).
    std::thread::sleep(Duration::from_millis(2100));
    let cold = {
        let t = Instant::now();
        let resolved = rootfs::resolve(&image.display().to_string(), work.path(), &cache).unwrap();
        let tree = rootfs::merge_for(&resolved, arch, &[]).unwrap();
        assert_eq!(tree.iter().filter(|s| s.entry.is_file()).count(), 2000);
        t.elapsed()
    };
    let warm = best_of(5, || {
        let resolved = rootfs::resolve(&image.display().to_string(), work.path(), &cache).unwrap();
        let tree = rootfs::merge_for(&resolved, arch, &[]).unwrap();
        std::hint::black_box(tree.manifest().unwrap().digest());
    });

    let template =
        "{{ .HostIP }} {{ or .Missing \"x\" }} {{ if eq .Arch \"amd64\" }}a{{ else }}b{{ end }}\n"
            .repeat(60);
    let env: Env = [("HostIP", "10.0.0.1"), ("Arch", "amd64")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let render = best_of(50, || {
        std::hint::black_box(installer_proto::template::render("t", &template, &env).unwrap());
    });

    println!("merge 200 MB rootfs, cold (hashing):  {cold:>10.1?}");
    println!("merge 200 MB rootfs, warm (cached):   {warm:>10.1?}   target < 250 ms");
    println!(
        "render {} B template:              {render:>10.1?}   target < 200 µs",
        template.len()
    );
    let mut missed = Vec::new();
    if warm > Duration::from_millis(250) {
        missed.push("warm merge");
    }
    if render > Duration::from_micros(200) {
        missed.push("template render");
    }
    assert!(missed.is_empty(), "targets missed: {missed:?}");
}
