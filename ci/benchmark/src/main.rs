//! basalt-bench: the benchmark harness behind `ci/bench`.
//!
//! `basalt-bench run --basalt BIN --dir2ext4 BIN --bench-apply BIN --work DIR
//!  --json OUT [--runs N] [--no-debootstrap] [--no-boot]` times each entry against the
//! usual tool in the same run, writes OUT (a JSON list of
//! `{name, value, unit, baseline, ratio, target, better, ...}`) after every
//! entry, and prints a table on stdout. Logs go to stderr.
//!
//! `basalt-bench verity-format DATA HASH` is our side of the verity entry.

mod assembly;
mod boot;
mod conventional;
mod debootstrap;
mod ext4;
mod grubdisk;
mod provisioner;
mod report;
mod run;
mod slot_write;
mod verity;
mod vm;
mod watch;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use report::Entry;

struct Args {
    basalt: PathBuf,
    dir2ext4: PathBuf,
    bench_apply: PathBuf,
    work: PathBuf,
    json: PathBuf,
    runs: usize,
    debootstrap: bool,
    /// Boot both images under TCG (minutes).
    boot: bool,
    /// Groups to run (`--only`); empty means all.
    only: Vec<String>,
}

/// Benchmark groups `--only` accepts.
const GROUPS: &[&str] = &[
    "assembly",
    "ext4",
    "boot",
    "verity",
    "provisioner",
    "slot-write",
];

impl Args {
    fn wants(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }
}

const USAGE: &str = "usage: basalt-bench run --basalt BIN --dir2ext4 BIN --bench-apply BIN --work DIR --json OUT [--runs N] [--no-debootstrap] [--no-boot] [--only GROUP,...]\n       groups: assembly, ext4, boot, verity, provisioner, slot-write\n       basalt-bench verity-format DATA HASH";

fn parse_run(args: &[String]) -> Result<Args> {
    let (mut basalt, mut dir2ext4, mut bench_apply, mut work, mut json) =
        (None, None, None, None, None);
    let mut runs = 3;
    let mut debootstrap = true;
    let mut boot = true;
    let mut only = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .with_context(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--basalt" => basalt = Some(PathBuf::from(val()?)),
            "--dir2ext4" => dir2ext4 = Some(PathBuf::from(val()?)),
            "--bench-apply" => bench_apply = Some(PathBuf::from(val()?)),
            "--work" => work = Some(PathBuf::from(val()?)),
            "--json" => json = Some(PathBuf::from(val()?)),
            "--runs" => {
                let v = val()?;
                runs = v
                    .parse()
                    .with_context(|| format!("--runs {v:?} is not a count"))?;
                if runs == 0 {
                    bail!("--runs must be at least 1");
                }
            }
            "--no-debootstrap" => debootstrap = false,
            "--no-boot" => boot = false,
            "--only" => {
                for g in val()?.split(',').filter(|g| !g.is_empty()) {
                    if !GROUPS.contains(&g) {
                        bail!(
                            "--only: unknown group {g:?} (groups: {})",
                            GROUPS.join(", ")
                        );
                    }
                    only.push(g.to_string());
                }
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let need = |v: Option<PathBuf>, n: &str| v.with_context(|| format!("{n} is required\n{USAGE}"));
    let work = need(work, "--work")?;
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    Ok(Args {
        basalt: need(basalt, "--basalt")?,
        dir2ext4: need(dir2ext4, "--dir2ext4")?,
        bench_apply: need(bench_apply, "--bench-apply")?,
        // Absolute: commands run in other directories and debootstrap insists.
        work: std::fs::canonicalize(&work)
            .with_context(|| format!("resolving {}", work.display()))?,
        json: need(json, "--json")?,
        runs,
        debootstrap,
        boot,
        only,
    })
}

/// bench.json through a temp file and rename: never half-written.
fn write_json(path: &Path, entries: &[Entry]) -> Result<()> {
    let v: Vec<_> = entries.iter().map(Entry::to_json).collect();
    let text = serde_json::to_string_pretty(&v)? + "\n";
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

fn failed(name: &str, unit: &'static str, e: &anyhow::Error) -> Entry {
    eprintln!("bench: {name} FAILED: {e:#}");
    Entry::new(name, None, unit).note(format!("FAILED: {}", format!("{e:#}").replace('\n', " | ")))
}

fn run(a: &Args) -> Result<bool> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut ok = true;
    let mut record = |entries: &mut Vec<Entry>, r: Result<Vec<Entry>>, name: &str, unit| {
        match r {
            Ok(es) => entries.extend(es),
            Err(e) => {
                ok = false;
                entries.push(failed(name, unit, &e));
            }
        }
        write_json(&a.json, entries)
    };

    // The tar build and its debootstrap baseline first, back to back. The
    // ext4 and boot groups need the tar build's tree and package list.
    let asm_groups = a.wants("assembly") || a.wants("ext4") || (a.boot && a.wants("boot"));
    if asm_groups {
        match assembly::tar_build(&a.basalt, &a.work) {
            Ok(asm) => {
                if a.wants("assembly") {
                    let base = if a.debootstrap {
                        debootstrap::baseline(&a.work, asm.mirror.as_deref(), &asm.packages)
                    } else {
                        Err(anyhow::anyhow!("skipped (--no-debootstrap)"))
                    };
                    if let Err(e) = &base {
                        eprintln!("bench: debootstrap baseline unavailable: {e:#}");
                    }
                    record(
                        &mut entries,
                        Ok(assembly::tar_entries(&asm, &base)),
                        "",
                        "s",
                    )?;
                    let raw = assembly::raw_build(&a.basalt, &a.work);
                    record(&mut entries, raw, "raw image build", "s")?;
                }
                if a.wants("ext4") {
                    let r = ext4::bench(&a.dir2ext4, &asm.tar, &a.work, a.runs).map(|e| vec![e]);
                    record(&mut entries, r, "ext4", "s")?;
                }
                if a.boot && a.wants("boot") {
                    let root = if a.debootstrap {
                        debootstrap::kept_root(&a.work, asm.mirror.as_deref(), &asm.packages)
                    } else {
                        Err(anyhow::anyhow!("skipped (--no-debootstrap)"))
                    };
                    let r = boot::bench(
                        &a.basalt,
                        &assembly::lock_path(&a.work),
                        root,
                        &a.work,
                        a.runs,
                    );
                    record(&mut entries, r, "boot (TCG)", "s")?;
                }
            }
            Err(e) => {
                record(&mut entries, Err(e), "assembly (tar build)", "s")?;
                if a.wants("assembly") {
                    let raw = assembly::raw_build(&a.basalt, &a.work);
                    record(&mut entries, raw, "raw image build", "s")?;
                }
            }
        }
    }
    if a.wants("verity") {
        let r = verity::bench(&a.work, a.runs).map(|e| vec![e]);
        record(&mut entries, r, "verity", "s")?;
    }
    if a.wants("provisioner") {
        let r = provisioner::bench(&a.bench_apply, &a.work);
        record(&mut entries, r, "provisioner", "ms")?;
    }
    if a.wants("slot-write") {
        let r = slot_write::bench(&a.basalt, &a.work, a.runs).map(|e| vec![e]);
        record(&mut entries, r, "slot write", "MiB/s")?;
    }
    print!("{}", report::table(&entries));
    Ok(ok)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => {
            let a = parse_run(&args[1..])?;
            if !run(&a).context("running the benchmarks")? {
                bail!(
                    "some benchmarks failed (see the table and {})",
                    a.json.display()
                );
            }
            Ok(())
        }
        Some("verity-format") => match &args[1..] {
            [data, hash] => verity::format_cmd(Path::new(data), Path::new(hash)),
            _ => bail!("{USAGE}"),
        },
        _ => bail!("{USAGE}"),
    }
}
