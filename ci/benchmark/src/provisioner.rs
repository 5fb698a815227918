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

/// Size of the dedicated ext4 the apply runs on.
const FS_BYTES: u64 = 256 << 20;

/// The file system type name of `dir` (`stat -f -c %T`).
fn fs_type(dir: &Path, work: &Path) -> String {
    timed(&Cmd::new("stat").args(["-f", "-c", "%T"]).arg(dir), work)
        .map(|m| m.stdout.trim().to_string())
        .unwrap_or_else(|e| {
            format!(
                "unknown ({})",
                format!("{e:#}").lines().next().unwrap_or("")
            )
        })
}

/// A fresh ext4 mounted (loop) at `work/prov-fs`, like the ROOT partition
/// the provisioner writes at first boot: nobody else's dirty data in it,
/// so its one syncfs costs what it costs at boot. Needs root and loop
/// devices; `Err` says why not.
fn dedicated_ext4(work: &Path) -> Result<std::path::PathBuf> {
    let img = work.join("prov-fs.img");
    let mnt = work.join("prov-fs");
    if mnt.exists() {
        // A previous run that stopped early may have left it mounted.
        let _ = timed(&Cmd::new("umount").arg(&mnt), work);
    }
    std::fs::create_dir_all(&mnt)?;
    let f = std::fs::File::create(&img).with_context(|| format!("creating {}", img.display()))?;
    f.set_len(FS_BYTES)?;
    drop(f);
    timed(
        &Cmd::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4"])
            .arg(&img),
        work,
    )?;
    timed(
        &Cmd::new("mount").args(["-o", "loop"]).arg(&img).arg(&mnt),
        work,
    )?;
    Ok(mnt)
}

fn unmount(mnt: &Path, work: &Path) {
    if let Err(e) = timed(&Cmd::new("umount").arg(mnt), work) {
        eprintln!("bench: could not unmount {}: {e:#}", mnt.display());
    }
    std::fs::remove_file(work.join("prov-fs.img")).ok();
}

pub fn bench(bench_apply: &Path, work: &Path) -> Result<Vec<Entry>> {
    let (root, mounted, where_) = match dedicated_ext4(work) {
        Ok(mnt) => (
            mnt,
            true,
            "a dedicated, freshly made ext4 (loop mount), as ROOT is at first boot".to_string(),
        ),
        Err(e) => {
            let root = work.join("prov");
            std::fs::create_dir_all(&root)?;
            let why = format!("{e:#}").lines().next().unwrap_or("").to_string();
            (
                root,
                false,
                format!("the work directory, shared with other writers (no dedicated ext4: {why})"),
            )
        }
    };
    let fs = fs_type(&root, work);
    let m = timed(&Cmd::new(bench_apply).arg(&root), work);
    if mounted {
        unmount(&root, work);
    }
    let m = m?;
    let mut entries = Vec::new();
    let apply_note = format!(
        "median wall time of 5 complete applies including their syncfs; file system {fs}: {where_}"
    );
    let parse_note =
        "median wall time of 10 validations (parse, checks, config paths to line:column)";
    // The 20 ms parse target is tracked on the Ignition entry; the
    // cloud-config figure (mostly YAML scanning in yaml-rust2) is reported
    // for comparison, without a target.
    for (prefix, name, target, what) in [
        (
            "apply ",
            "provisioner: apply 1000 files / 100 units / 50 users",
            Some(150.0),
            apply_note.as_str(),
        ),
        (
            "parse+validate ",
            "provisioner: parse+validate 1 MiB config",
            Some(20.0),
            parse_note,
        ),
        (
            "parse+validate cloud-config ",
            "provisioner: parse+validate 1 MiB cloud-config",
            None,
            parse_note,
        ),
    ] {
        let line = line_starting(&m.stdout, prefix)?;
        let (wall, cpu) =
            figures(line).with_context(|| format!("no wall/cpu figures in {line:?}"))?;
        let mut e = Entry::new(name, Some(wall), "ms")
            .note(format!("{what}; CPU {cpu:.1} ms; no baseline"));
        if let Some(t) = target {
            e = e.target(TargetOn::Value, t);
        }
        entries.push(e);
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
            (
                "parse+validate cloud-config 1040 KiB: wall 7.5 ms, cpu 7.0 ms (for comparison)",
                Some((7.5, 7.0)),
            ),
            ("apply: nothing", None),
            ("apply: wall x ms, cpu 1 ms", None),
        ];
        for (l, want) in cases {
            assert_eq!(figures(l), want, "{l}");
        }
    }
}
