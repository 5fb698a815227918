//! Running a command under GNU time: wall seconds, peak RSS, captured output.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// GNU time (Debian package `time`): `%M` is the peak RSS in KiB of the
/// command and of the descendants it waited for.
const GNU_TIME: &str = "/usr/bin/time";

/// A command line to measure.
#[derive(Debug, Clone)]
pub struct Cmd {
    pub prog: OsString,
    pub args: Vec<OsString>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(OsString, OsString)>,
}

impl Cmd {
    pub fn new(prog: impl Into<OsString>) -> Cmd {
        Cmd {
            prog: prog.into(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Cmd {
        self.args.push(a.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, it: I) -> Cmd {
        self.args.extend(it.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Cmd {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn cwd(mut self, d: &Path) -> Cmd {
        self.cwd = Some(d.to_path_buf());
        self
    }

    fn display(&self) -> String {
        let mut s = self.prog.to_string_lossy().into_owned();
        for a in self.args.iter().take(12) {
            s.push(' ');
            s += &a.to_string_lossy();
        }
        if self.args.len() > 12 {
            s += &format!(" ... ({} more)", self.args.len() - 12);
        }
        s
    }
}

/// What one run cost and said.
#[derive(Debug)]
pub struct Measured {
    pub secs: f64,
    pub peak_rss_kib: u64,
    pub stdout: String,
    pub stderr: String,
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Run `cmd` to completion under GNU time; a non-zero exit is an error
/// carrying the tail of its stderr.
pub fn timed(cmd: &Cmd, scratch: &Path) -> Result<Measured> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let rss_file = scratch.join(format!("time-{}-{n}.out", std::process::id()));
    let mut c = Command::new(GNU_TIME);
    c.arg("-f").arg("%M").arg("-o").arg(&rss_file);
    c.arg(&cmd.prog).args(&cmd.args);
    if let Some(d) = &cmd.cwd {
        c.current_dir(d);
    }
    c.envs(cmd.env.iter().map(|(k, v)| (k, v)));
    c.stdin(Stdio::null());
    eprintln!("bench: running {}", cmd.display());
    let t0 = Instant::now();
    let out = c
        .output()
        .with_context(|| format!("starting {GNU_TIME} {}", cmd.display()))?;
    let secs = t0.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        bail!(
            "{} failed ({}):\n{}\n{}",
            cmd.display(),
            out.status,
            last_lines(&stdout, 10),
            last_lines(&stderr, 30)
        );
    }
    let rss_text = std::fs::read_to_string(&rss_file)
        .with_context(|| format!("reading {}", rss_file.display()))?;
    let peak_rss_kib =
        parse_rss(&rss_text).with_context(|| format!("parsing GNU time output {rss_text:?}"))?;
    std::fs::remove_file(&rss_file).ok();
    eprintln!("bench:   {secs:.2} s, peak RSS {} MiB", peak_rss_kib / 1024);
    Ok(Measured {
        secs,
        peak_rss_kib,
        stdout,
        stderr,
    })
}

/// The last line of GNU time's `-o` file is the `%M` figure (earlier lines
/// may report a signal or exit status).
fn parse_rss(text: &str) -> Result<u64> {
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .context("empty output")?;
    last.trim()
        .parse()
        .with_context(|| format!("not a number: {last:?}"))
}

/// Median of the run times of `n` runs (n >= 1), and the last run.
pub fn median_of(n: usize, mut run: impl FnMut() -> Result<Measured>) -> Result<(f64, Measured)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..n.max(1) {
        let m = run()?;
        times.push(m.secs);
        last = Some(m);
    }
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    Ok((med, last.context("no runs")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_parsing() {
        let cases = [
            ("1234\n", Some(1234)),
            ("Command exited with non-zero status 1\n77\n", Some(77)),
            ("", None),
            ("abc\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rss(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn timed_true_and_false() {
        if !Path::new(GNU_TIME).exists() {
            eprintln!("SKIPPING timed_true_and_false: {GNU_TIME} is absent (apt-get install time)");
            return;
        }
        let d = std::env::temp_dir();
        let m = timed(&Cmd::new("sh").arg("-c").arg("echo hi; echo err >&2"), &d);
        let m = m.expect("sh runs");
        assert_eq!(m.stdout, "hi\n");
        assert_eq!(m.stderr, "err\n");
        assert!(m.peak_rss_kib > 0);
        let e = timed(&Cmd::new("sh").arg("-c").arg("echo boom >&2; exit 3"), &d);
        let msg = format!("{:#}", e.expect_err("exit 3 is an error"));
        assert!(msg.contains("boom"), "{msg}");
    }
}
