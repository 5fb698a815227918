//! Benchmark: apply a generated Ignition config with 1,000 files, 100 units
//! and 50 users into a temp root; parse and validate a ~1 MiB config (Ignition,
//! then cloud-config).
//! Targets (issue 4): <= 150 ms and <= 20 ms.
//!
//! Run: `cargo run --release -p basalt-provisioner --example bench_apply [-- ROOT_PARENT]`
//! ROOT_PARENT defaults to the system temp dir (put it on the disk you care about).
//! For profiling the parse alone: `PARSE_LOOP=N` only parses and validates
//! the ~1 MiB Ignition config (cloud-config with `PARSE_CLOUD_CONFIG=1`) N
//! times and prints nothing.

use basalt_provisioner::apply::{self, Options};
use basalt_provisioner::fetch::{Fetcher, resolve_plan};
use basalt_provisioner::userdata;
use serde_json::json;
use std::time::{Duration, Instant};

fn apply_config() -> String {
    let files: Vec<_> = (0..1000)
        .map(|i| {
            json!({
                "path": format!("/srv/bench/d{:02}/f{i:04}", i % 50),
                "contents": {"source": format!("data:,file%20{i}%0A")},
                "mode": 0o640,
                "user": {"name": format!("user{:02}", i % 50)},
            })
        })
        .collect();
    let units: Vec<_> = (0..100)
        .map(|i| {
            json!({
                "name": format!("bench{i:03}.service"),
                "enabled": i % 2 == 0,
                "contents": format!("[Unit]\nDescription=bench {i}\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"),
                "dropins": [{"name": "10-env.conf", "contents": "[Service]\nEnvironment=A=1\n"}],
            })
        })
        .collect();
    let users: Vec<_> = (0..50)
        .map(|i| json!({"name": format!("user{i:02}"), "sshAuthorizedKeys": [format!("ssh-ed25519 AAAA{i} u{i}")]}))
        .collect();
    json!({
        "ignition": {"version": "3.4.0"},
        "storage": {"files": files},
        "systemd": {"units": units},
        "passwd": {"users": users},
    })
    .to_string()
}

/// About 1 MiB of config: files with inline data URLs of ~1 KiB each.
fn big_config() -> String {
    let payload = "x".repeat(1000);
    let files: Vec<_> = (0..1000)
        .map(|i| json!({"path": format!("/big/{i}"), "contents": {"source": format!("data:,{payload}")}, "mode": 420}))
        .collect();
    serde_json::to_string_pretty(
        &json!({"ignition": {"version": "3.4.0"}, "storage": {"files": files}}),
    )
    .unwrap_or_default()
}

/// About 1 MiB of cloud-config: `write_files` entries of ~1 KiB each.
fn big_cloud_config() -> String {
    let payload = "x".repeat(1000);
    let mut out = String::from("#cloud-config\nwrite_files:\n");
    for i in 0..1000 {
        out.push_str(&format!(
            "  - path: /big/{i}\n    permissions: '0644'\n    content: |\n      {payload}\n"
        ));
    }
    out
}

fn fake_root(parent: &std::path::Path) -> tempfile::TempDir {
    let t = tempfile::tempdir_in(parent).expect("creating temp root");
    let r = t.path();
    std::fs::create_dir_all(r.join("etc")).expect("mkdir etc");
    std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").expect("passwd");
    std::fs::write(r.join("etc/group"), "root:x:0:\n").expect("group");
    std::fs::write(r.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").expect("shadow");
    std::fs::write(r.join("etc/gshadow"), "root:*::\n").expect("gshadow");
    t
}

/// CPU time of this thread (ns on CPU from /proc/thread-self/schedstat):
/// a fairer figure than wall time on a loaded machine.
fn cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// Write back everything dirty on the file system holding `dir`.
fn settle(dir: &std::path::Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = rustix::fs::syncfs(&f);
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let parent = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    if let Ok(n) = std::env::var("PARSE_LOOP") {
        let big = if std::env::var_os("PARSE_CLOUD_CONFIG").is_some() {
            big_cloud_config()
        } else {
            big_config()
        };
        for _ in 0..n.parse::<usize>().unwrap_or(100) {
            let r = userdata::validate_str(&big);
            assert!(!r.has_errors());
        }
        return;
    }
    let cfg = apply_config();
    let f = Fetcher::new();
    let mut apply_times = Vec::new();
    let mut apply_cpu = Vec::new();
    for _ in 0..5 {
        let root = fake_root(&parent);
        // Start from a clean file system, as at first boot: the previous
        // round's deletions must not be flushed by this round's syncfs.
        settle(&parent);
        let (t0, c0) = (Instant::now(), cpu());
        let loaded = userdata::load_str(&cfg).expect("bench config is valid");
        let plan = userdata::assemble(loaded, &f).expect("assemble");
        let plan = resolve_plan(plan, &f).expect("resolve");
        let opts = Options {
            now: Some(0),
            source: "bench".into(),
            format: "ignition".into(),
            warnings: vec![],
        };
        apply::apply(&plan, root.path(), &opts).expect("apply");
        apply_times.push(t0.elapsed());
        apply_cpu.push(cpu().saturating_sub(c0));
    }
    let big = big_config();
    let (parse_wall, parse_cpu) = time_parse(&big);
    let big_cc = big_cloud_config();
    let (cc_wall, cc_cpu) = time_parse(&big_cc);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "apply 1000 files / 100 units / 50 users: wall {:.1} ms, cpu {:.1} ms (target <= 150 ms) [root under {}]",
        ms(median(apply_times)),
        ms(median(apply_cpu)),
        parent.display()
    );
    println!(
        "parse+validate {} KiB config: wall {:.1} ms, cpu {:.1} ms (target <= 20 ms)",
        big.len() / 1024,
        ms(parse_wall),
        ms(parse_cpu)
    );
    println!(
        "parse+validate cloud-config {} KiB: wall {:.1} ms, cpu {:.1} ms (for comparison)",
        big_cc.len() / 1024,
        ms(cc_wall),
        ms(cc_cpu)
    );
}

/// Median wall and CPU time of `validate_str` over 10 runs, after checking
/// once that the config yields its 1000 files.
fn time_parse(text: &str) -> (Duration, Duration) {
    let loaded = userdata::load_str(text).expect("bench config is valid");
    assert_eq!(loaded.plan.files.len(), 1000, "bench config files");
    let mut wall = Vec::new();
    let mut cpu_times = Vec::new();
    for _ in 0..10 {
        let (t0, c0) = (Instant::now(), cpu());
        let r = userdata::validate_str(text);
        assert!(!r.has_errors());
        wall.push(t0.elapsed());
        cpu_times.push(cpu().saturating_sub(c0));
    }
    (median(wall), median(cpu_times))
}
