//! Progress output, on stderr only: indicatif bars when stderr is a terminal, otherwise
//! one plain line per step ("fetching 12 files (34.5 MiB), 100 cached").

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Formats a byte count for humans ("1.5 MiB").
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64; // display only
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Prints one step line on stderr.
pub fn step(msg: &str) {
    eprintln!("{msg}");
}

struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    files: Mutex<BTreeMap<String, ProgressBar>>,
}

/// Progress of one batch of downloads.
pub struct Progress {
    bars: Option<Bars>,
}

impl Progress {
    /// No output at all.
    pub fn disabled() -> Self {
        Progress { bars: None }
    }

    /// Starts a batch: bars on a terminal, else one plain line (none when nothing to fetch
    /// and nothing cached).
    pub fn for_batch(files: usize, bytes: u64, cached: usize) -> Self {
        if files == 0 && cached == 0 {
            return Progress::disabled();
        }
        let line = format!(
            "fetching {files} files ({}), {cached} cached",
            human_bytes(bytes)
        );
        if files == 0 || !std::io::stderr().is_terminal() {
            step(&line);
            return Progress::disabled();
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(bytes));
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        total.set_style(style);
        total.set_message(line);
        Progress {
            bars: Some(Bars {
                multi,
                total,
                files: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Wraps a reader so the bytes read advance the total bar.
    pub fn reader<R: Read>(&self, r: R) -> impl Read {
        Counted {
            inner: r,
            bar: self.bars.as_ref().map(|b| b.total.clone()),
        }
    }

    /// A file download started.
    pub fn file_started(&self, label: &str) {
        if let Some(b) = &self.bars {
            let pb = b.multi.add(ProgressBar::new_spinner());
            pb.set_message(label.to_string());
            pb.enable_steady_tick(std::time::Duration::from_millis(200));
            let mut files = b.files.lock().unwrap_or_else(|p| p.into_inner());
            files.insert(label.to_string(), pb);
        }
    }

    /// A file download finished.
    pub fn file_done(&self, label: &str) {
        if let Some(b) = &self.bars {
            let mut files = b.files.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(pb) = files.remove(label) {
                pb.finish_and_clear();
                b.multi.remove(&pb);
            }
        }
    }

    /// Ends the batch.
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            let mut files = b.files.lock().unwrap_or_else(|p| p.into_inner());
            for (_, pb) in std::mem::take(&mut *files) {
                pb.finish_and_clear();
            }
            b.total.finish();
        }
    }
}

struct Counted<R> {
    inner: R,
    bar: Option<ProgressBar>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(bar) = &self.bar {
            bar.inc(u64::try_from(n).unwrap_or(0));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_table() {
        for (n, want) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536 * 1024, "1.5 MiB"),
            (3 << 30, "3.0 GiB"),
        ] {
            assert_eq!(human_bytes(n), want);
        }
    }
}
