//! Entries 1, 4, 5 and 7: `basalt build` with a warm cache (tar, then raw),
//! and the figures its manifest.json reports.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::report::{Entry, TargetOn};
use crate::run::{Cmd, Measured, timed};

/// The environment variable that makes `basalt build` print one
/// `timing: STAGE WALL_SECS cpu CPU_SECS` line per stage on stderr
/// (builder/src/stages/timings.rs).
const TIMINGS_ENV: &str = "BASALT_TIMINGS";

/// The stage line covering resolve + verify + unpack (from the start of
/// resolution to the assembled tree, kernel module indexes included; the
/// tar writing that follows is not in it).
const RVU_STAGE: &str = "resolve+verify+unpack";

/// `(wall, cpu)` seconds of stage `stage` from `basalt build`'s stderr.
fn stage_timing(stderr: &str, stage: &str) -> Option<(f64, Option<f64>)> {
    stderr.lines().find_map(|l| {
        let rest = l
            .strip_prefix("timing: ")?
            .strip_prefix(stage)?
            .strip_prefix(' ')?;
        let mut it = rest.split_whitespace();
        let wall = it.next()?.parse().ok()?;
        let cpu = match (it.next(), it.next()) {
            (Some("cpu"), Some(c)) => c.parse().ok(),
            _ => None,
        };
        Some((wall, cpu))
    })
}

/// Every `timing:` line, joined for a note.
fn timing_summary(stderr: &str) -> String {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("timing: "))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the timed tar build leaves for the other entries.
pub struct Assembled {
    pub measured: Measured,
    pub tar: PathBuf,
    /// The mirror `basalt -v` says it discovered in the host's apt configuration.
    pub mirror: Option<String>,
    /// The resolved package set (names), for the debootstrap baseline.
    pub packages: Vec<String>,
}

pub fn lock_path(work: &Path) -> PathBuf {
    work.join("bench.lock")
}

fn fresh_dir(d: &Path) -> Result<()> {
    if d.exists() {
        std::fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))?;
    }
    std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))
}

fn remove_lock(work: &Path) -> Result<()> {
    let l = lock_path(work);
    if l.exists() {
        std::fs::remove_file(&l).with_context(|| format!("removing {}", l.display()))?;
    }
    Ok(())
}

/// `    mirror URL (from FILE:LINE)` from `basalt -v`'s log.
fn mirror_from_log(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("mirror ")?;
        rest.split_whitespace().next().map(str::to_string)
    })
}

fn only_file_with_ext(dir: &Path, ext: &str) -> Result<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == ext) {
            found.push(p);
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected one .{ext} file in {}, found {found:?}",
            dir.display()
        ),
    }
}

fn packages_list(stdout: &str) -> Result<Vec<String>> {
    let v: Value = serde_json::from_str(stdout).context("parsing `basalt packages --json`")?;
    let rows = v
        .as_array()
        .context("`basalt packages --json` is not a list")?;
    rows.iter()
        .map(|r| {
            r["name"]
                .as_str()
                .map(str::to_string)
                .context("package row without a name")
        })
        .collect()
}

/// Warm the download cache, then time a tar build that resolves, verifies,
/// unpacks and writes the tree, offline.
pub fn tar_build(basalt: &Path, work: &Path) -> Result<Assembled> {
    let lock = lock_path(work);
    remove_lock(work)?;
    let warm = work.join("tar-warm");
    fresh_dir(&warm)?;
    eprintln!("bench: warming the download cache (untimed build)");
    timed(
        &Cmd::new(basalt)
            .args(["build", "--format", "tar", "-o"])
            .arg(&warm)
            .arg("--lock")
            .arg(&lock)
            .cwd(work),
        work,
    )?;
    std::fs::remove_dir_all(&warm).ok();
    remove_lock(work)?;
    let out = work.join("tar");
    fresh_dir(&out)?;
    let measured = timed(
        &Cmd::new(basalt)
            .env(TIMINGS_ENV, "1")
            .args(["-v", "build", "--format", "tar", "--offline", "-o"])
            .arg(&out)
            .arg("--lock")
            .arg(&lock)
            .cwd(work),
        work,
    )?;
    let tar = only_file_with_ext(&out, "tar")?;
    let mirror = mirror_from_log(&measured.stderr);
    let pk = timed(
        &Cmd::new(basalt)
            .args(["packages", "--json", "--offline", "--lock"])
            .arg(&lock)
            .cwd(work),
        work,
    )?;
    let packages = packages_list(&pk.stdout)?;
    Ok(Assembled {
        measured,
        tar,
        mirror,
        packages,
    })
}

/// Entries for the tar build; `baseline` is the debootstrap + apt-get time
/// and peak RSS when it could run, else the reason it could not.
pub fn tar_entries(a: &Assembled, baseline: &Result<Measured>) -> Vec<Entry> {
    let name = "assembly: whole basalt build --format tar --offline (resolve+verify+unpack+tar)";
    let (bt, brss, why) = match baseline {
        Ok(m) => (
            Some(m.secs),
            Some(m.peak_rss_kib as f64 / 1024.0),
            "baseline: debootstrap --variant=minbase trixie + chroot apt-get install of the same package set, warm caches".to_string(),
        ),
        Err(e) => (None, None, format!("no baseline: {}", first_line(e))),
    };
    let stages = timing_summary(&a.measured.stderr);
    let rvu = stage_timing(&a.measured.stderr, RVU_STAGE);
    let rvu_entries = match rvu {
        Some((wall, cpu)) => {
            let cpu = cpu.map_or(String::new(), |c| format!("; process CPU {c:.1} s"));
            vec![
                Entry::new(
                    "assembly: resolve+verify+unpack (issue 2's figure, timed inside the build)",
                    Some(wall),
                    "s",
                )
                .baseline(bt)
                .target(TargetOn::Ratio, 0.1)
                .note(format!(
                    "wall time from the start of resolution (signed index, Packages, resolver) through the SHA-256 check of every cached .deb, the unpack of every data.tar and the assembly steps, to the finished tree with the kernel module indexes; excludes the tar writing and process start/exit{cpu}; stages: {stages}"
                )),
                Entry::new("assembly: resolve+verify+unpack time", Some(wall), "s")
                    .target(TargetOn::Value, 15.0),
            ]
        }
        None => vec![
            Entry::new("assembly: resolve+verify+unpack", None, "s").note(format!(
                "FAILED: the build printed no `timing: {RVU_STAGE}` line with {TIMINGS_ENV}=1"
            )),
        ],
    };
    let mut out = vec![
        Entry::new(name, Some(a.measured.secs), "s")
            .baseline(bt)
            .target(TargetOn::Ratio, 0.1)
            .note(format!("{} packages; {why}", a.packages.len())),
    ];
    out.extend(rvu_entries);
    out.extend(vec![
        Entry::new(
            "assembly: peak RSS",
            Some(a.measured.peak_rss_kib as f64 / 1024.0),
            "MiB",
        )
        .baseline(brss)
        .note("GNU time %M: largest process RSS of the command tree"),
    ]);
    out
}

fn first_line(e: &anyhow::Error) -> String {
    format!("{e:#}").lines().next().unwrap_or("").to_string()
}

/// Entries 4, 5, 7: the raw image build and its manifest figures.
pub fn raw_build(basalt: &Path, work: &Path) -> Result<Vec<Entry>> {
    let out = work.join("raw");
    fresh_dir(&out)?;
    let m = timed(
        &Cmd::new(basalt)
            .args(["build", "--offline", "-o"])
            .arg(&out)
            .arg("--lock")
            .arg(lock_path(work))
            .cwd(work),
        work,
    )?;
    let manifest_path = out.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing {}", manifest_path.display()))?;
    let field = |k: &str| -> Result<u64> {
        v["usr"][k].as_u64().with_context(|| {
            format!(
                "{}: usr.{k} is missing or not a number",
                manifest_path.display()
            )
        })
    };
    let (fs, content, initrd) = (
        field("filesystem_size")?,
        field("content_bytes")?,
        field("initrd_size")?,
    );
    if content == 0 {
        bail!("{}: usr.content_bytes is 0", manifest_path.display());
    }
    let overhead = (fs as f64 / content as f64 - 1.0) * 100.0;
    std::fs::remove_dir_all(&out).ok();
    Ok(vec![
        Entry::new(
            "raw image: basalt build --offline (from lock, warm cache)",
            Some(m.secs),
            "s",
        )
        .note(format!("peak RSS {} MiB", m.peak_rss_kib / 1024)),
        Entry::new(
            "/usr image size overhead (fs size / file bytes - 1)",
            Some(overhead),
            "%",
        )
        .target(TargetOn::Value, 10.0)
        .note(format!("filesystem {fs} B, file content {content} B")),
        Entry::new(
            "initramfs size (compressed)",
            Some(initrd as f64 / 1048576.0),
            "MiB",
        )
        .target(TargetOn::Value, 10.0),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_line() {
        let cases = [
            (
                "==> building x\n    mirror http://m.invalid/debian (from /etc/apt/a.sources:2)\n",
                Some("http://m.invalid/debian"),
            ),
            ("==> building x\n", None),
            ("    mirrored nothing\n", None),
        ];
        for (log, want) in cases {
            assert_eq!(mirror_from_log(log).as_deref(), want, "{log:?}");
        }
    }

    #[test]
    fn stage_lines() {
        let log = "==> x\ntiming: resolve 1.250 cpu 1.20\ntiming: resolve+verify+unpack 9.500 cpu 17.00\ntiming: old 2.0\n";
        let cases = [
            ("resolve", Some((1.25, Some(1.2)))),
            ("resolve+verify+unpack", Some((9.5, Some(17.0)))),
            ("old", Some((2.0, None))),
            ("unpack", None),
        ];
        for (stage, want) in cases {
            assert_eq!(stage_timing(log, stage), want, "{stage}");
        }
        assert_eq!(
            timing_summary(log),
            "resolve 1.250 cpu 1.20; resolve+verify+unpack 9.500 cpu 17.00; old 2.0"
        );
    }

    #[test]
    fn package_names() {
        let ok = r#"[{"name":"a","version":"1"},{"name":"b","version":"2"}]"#;
        assert_eq!(packages_list(ok).expect("ok"), ["a", "b"]);
        for bad in ["{}", r#"[{"version":"1"}]"#, "nope"] {
            assert!(packages_list(bad).is_err(), "{bad}");
        }
    }
}
