//! Hidden per-stage timings for `ci/bench`: with `BASALT_TIMINGS=1` in the
//! environment, each timed stage prints one `timing: STAGE SECONDS` line on
//! stderr when it ends, and [`report_since_first`] prints the wall time from
//! the start of the first timed stage. Without the variable nothing is
//! printed and nothing changes. The figures are wall-clock durations; they
//! are diagnostics only and never reach an artifact.

use std::sync::OnceLock;
use std::time::Instant;

/// The environment variable that turns the report on.
pub const ENV: &str = "BASALT_TIMINGS";

/// When the first timed stage began, and the process CPU time then.
static FIRST: OnceLock<(Instant, Option<f64>)> = OnceLock::new();

fn enabled() -> bool {
    std::env::var_os(ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Linux's USER_HZ on every architecture it is built for here: the unit of
/// the CPU times in /proc/self/stat.
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds of this process so far (all threads), from
/// /proc/self/stat fields 14 and 15; None when unreadable.
fn process_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_from_stat(&stat)
}

fn cpu_from_stat(stat: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces; fields after it follow ") ".
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state), so fields 14 and 15 are rest[11] and rest[12].
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// The line printed for a stage: wall seconds, then CPU seconds if known.
fn line(stage: &str, secs: f64, cpu: Option<f64>) -> String {
    match cpu {
        Some(c) => format!("timing: {stage} {secs:.3} cpu {c:.2}"),
        None => format!("timing: {stage} {secs:.3}"),
    }
}

/// Run `f` as stage `stage`, printing its wall time when enabled.
pub fn stage<T>(stage: &str, f: impl FnOnce() -> T) -> T {
    let (t0, c0) = (Instant::now(), process_cpu());
    FIRST.get_or_init(|| (t0, c0));
    let out = f();
    if enabled() {
        let cpu = process_cpu().zip(c0).map(|(c, c0)| c - c0);
        eprintln!("{}", line(stage, t0.elapsed().as_secs_f64(), cpu));
    }
    out
}

/// Print the wall time since the first timed stage began, as `name`.
pub fn report_since_first(name: &str) {
    if let (true, Some((t0, c0))) = (enabled(), FIRST.get()) {
        let cpu = process_cpu().zip(*c0).map(|(c, c0)| c - c0);
        eprintln!("{}", line(name, t0.elapsed().as_secs_f64(), cpu));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        let cases = [
            ("resolve", 1.0, None, "timing: resolve 1.000"),
            ("unpack", 0.0125, Some(3.0), "timing: unpack 0.013 cpu 3.00"),
            (
                "resolve+verify+unpack",
                12.3456,
                Some(20.014),
                "timing: resolve+verify+unpack 12.346 cpu 20.01",
            ),
        ];
        for (stage, secs, cpu, want) in cases {
            assert_eq!(line(stage, secs, cpu), want);
        }
    }

    #[test]
    fn stat_parsing() {
        let cases = [
            (
                "42 (basalt) R 1 42 42 0 -1 4194560 100 0 0 0 250 17 0 0 20 0 3 0",
                Some(2.67),
            ),
            (
                "42 (a b) c) S 1 42 42 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0",
                Some(0.03),
            ),
            ("42 (x) R 1 2", None),
            ("garbage", None),
        ];
        for (stat, want) in cases {
            let got = cpu_from_stat(stat).map(|c| (c * 100.0).round() / 100.0);
            assert_eq!(got, want, "{stat}");
        }
        assert!(
            process_cpu().is_some(),
            "/proc/self/stat is readable on Linux"
        );
    }

    #[test]
    fn stage_returns_the_value_and_sets_the_start() {
        assert_eq!(stage("test", || 41 + 1), 42);
        assert!(FIRST.get().is_some());
    }
}
