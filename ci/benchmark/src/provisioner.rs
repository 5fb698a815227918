//! Entry 6: the provisioner's own benchmark example (apply a generated
//! config; parse and validate ~1 MiB).

use std::path::Path;

use anyhow::{Context, Result};

use crate::report::{Entry, TargetOn};
use crate::run::{Cmd, timed};

/// `(wall ms, cpu ms)` from a line `... : wall X ms, cpu Y ms ...`.
fn figures(line: &str) -> Option<(f64, f64)> {
    let wall = line
        .split("wall ")
        .nth(1)?
        .split(" ms")
        .next()?
        .trim()
        .parse()
        .ok()?;
    let cpu = line
        .split("cpu ")
        .nth(1)?
        .split(" ms")
        .next()?
        .trim()
        .parse()
        .ok()?;
    Some((wall, cpu))
}

fn line_starting<'a>(out: &'a str, prefix: &str) -> Result<&'a str> {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .with_context(|| format!("bench_apply printed no line starting {prefix:?}:\n{out}"))
}

pub fn bench(bench_apply: &Path, work: &Path) -> Result<Vec<Entry>> {
    let root = work.join("prov");
    std::fs::create_dir_all(&root)?;
    let m = timed(&Cmd::new(bench_apply).arg(&root), work)?;
    let mut entries = Vec::new();
    for (prefix, name, target) in [
        (
            "apply ",
            "provisioner: apply 1000 files / 100 units / 50 users",
            150.0,
        ),
        (
            "parse+validate ",
            "provisioner: parse+validate 1 MiB config",
            20.0,
        ),
    ] {
        let line = line_starting(&m.stdout, prefix)?;
        let (wall, cpu) =
            figures(line).with_context(|| format!("no wall/cpu figures in {line:?}"))?;
        entries.push(
            Entry::new(name, Some(wall), "ms")
                .target(TargetOn::Value, target)
                .note(format!("median wall time; CPU {cpu:.1} ms; no baseline")),
        );
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_lines() {
        let cases = [
            (
                "apply 1000 files: wall 42.5 ms, cpu 30.1 ms (target <= 150 ms) [root]",
                Some((42.5, 30.1)),
            ),
            (
                "parse+validate 1000 KiB config: wall 9.0 ms, cpu 8.0 ms (target <= 20 ms)",
                Some((9.0, 8.0)),
            ),
            ("apply: nothing", None),
            ("apply: wall x ms, cpu 1 ms", None),
        ];
        for (l, want) in cases {
            assert_eq!(figures(l), want, "{l}");
        }
    }
}
