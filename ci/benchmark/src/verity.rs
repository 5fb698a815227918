//! Entry 3: dm-verity hashing of a 1 GiB file, basalt-verity against
//! `veritysetup format`, both as child processes on page-cached data.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::report::{Entry, TargetOn};
use crate::run::{Cmd, median_of, timed};

pub const DATA_BYTES: u64 = 1 << 30;
const SALT: [u8; 32] = [0x5a; 32];
const UUID: [u8; 16] = [
    0x62, 0x61, 0x73, 0x61, 0x6c, 0x74, 0x2d, 0x62, 0x65, 0x6e, 0x63, 0x68, 0x2d, 0x76, 0x65, 0x72,
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// 8-4-4-4-12 form, what `veritysetup --uuid` takes.
fn uuid_string(u: &[u8; 16]) -> String {
    let h = hex(u);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Deterministic incompressible-looking data (xorshift64, fixed seed).
pub fn write_data(path: &Path, len: u64) -> Result<()> {
    let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(f);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = usize::try_from(left.min(buf.len() as u64))?;
        w.write_all(&buf[..n])
            .with_context(|| format!("writing {}", path.display()))?;
        left -= n as u64;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The `verity-format DATA HASH` subcommand: our side of the comparison.
pub fn format_cmd(data: &Path, hash: &Path) -> Result<()> {
    let d = File::open(data).with_context(|| format!("opening {}", data.display()))?;
    let len = d.metadata()?.len();
    let h = File::create(hash).with_context(|| format!("creating {}", hash.display()))?;
    let v = basalt_verity::format(&d, 0, len, &SALT, UUID, &h, 0).context("hashing")?;
    h.sync_all().context("syncing hash file")?;
    println!("Root hash: {}", v.root_hex());
    Ok(())
}

fn root_from(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .map(|h| h.trim().to_string())
}

pub fn bench(work: &Path, runs: usize) -> Result<Entry> {
    let data = work.join("verity.data");
    eprintln!(
        "bench: writing {} MiB of verity test data",
        DATA_BYTES >> 20
    );
    write_data(&data, DATA_BYTES)?;
    let ours_hash = work.join("verity.ours");
    let theirs_hash = work.join("verity.veritysetup");
    let me = std::env::current_exe().context("finding this program")?;
    let ours = Cmd::new(me).arg("verity-format").arg(&data).arg(&ours_hash);
    let theirs = Cmd::new("veritysetup")
        .arg("format")
        .arg(&data)
        .arg(&theirs_hash)
        .arg(format!("--salt={}", hex(&SALT)))
        .arg(format!("--uuid={}", uuid_string(&UUID)));
    // One untimed pass warms the page cache for both.
    timed(&theirs, work)?;
    let (t_theirs, m_theirs) = median_of(runs, || timed(&theirs, work))?;
    let (t_ours, m_ours) = median_of(runs, || timed(&ours, work))?;
    let (r_ours, r_theirs) = (root_from(&m_ours.stdout), root_from(&m_theirs.stdout));
    if r_ours.is_none() || r_ours != r_theirs {
        bail!("root hashes differ: basalt {r_ours:?}, veritysetup {r_theirs:?}");
    }
    let same = std::fs::read(&ours_hash)? == std::fs::read(&theirs_hash)?;
    if !same {
        bail!("hash areas differ between basalt-verity and veritysetup (roots agree)");
    }
    for p in [&data, &ours_hash, &theirs_hash] {
        std::fs::remove_file(p).ok();
    }
    Ok(Entry::new("verity: hash 1 GiB (vs veritysetup format)", Some(t_ours), "s")
        .baseline(Some(t_theirs))
        .target(TargetOn::Ratio, 1.0)
        .note(format!(
            "median of {runs}; hash areas byte-identical; page-cached data; peak RSS ours {} MiB, veritysetup {} MiB",
            m_ours.peak_rss_kib / 1024,
            m_theirs.peak_rss_kib / 1024
        )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_form() {
        assert_eq!(
            uuid_string(&[0xab; 16]),
            "abababab-abab-abab-abab-abababababab"
        );
        assert_eq!(uuid_string(&UUID).len(), 36);
    }

    #[test]
    fn root_line() {
        let cases = [
            (
                "VERITY header information\nRoot hash:      \tabc12\n",
                Some("abc12"),
            ),
            ("Root hash: ff\n", Some("ff")),
            ("nothing\n", None),
        ];
        for (s, want) in cases {
            assert_eq!(root_from(s).as_deref(), want, "{s:?}");
        }
    }

    #[test]
    fn data_is_deterministic() {
        let d = std::env::temp_dir().join(format!("bench-verity-{}", std::process::id()));
        write_data(&d, 1003).expect("write");
        let a = std::fs::read(&d).expect("read");
        write_data(&d, 1003).expect("write");
        let b = std::fs::read(&d).expect("read");
        std::fs::remove_file(&d).ok();
        assert_eq!(a.len(), 1003);
        assert_eq!(a, b);
        assert_ne!(a[..8], a[8..16]);
    }

    /// Oracle: our verity-format against veritysetup on 4 MiB.
    #[test]
    fn matches_veritysetup_small() {
        if Command::new("veritysetup")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!(
                "SKIPPING matches_veritysetup_small: veritysetup is absent (apt-get install cryptsetup-bin)"
            );
            return;
        }
        let dir = std::env::temp_dir().join(format!("bench-verity-o-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let data = dir.join("d");
        write_data(&data, 4 << 20).expect("data");
        format_cmd(&data, &dir.join("ours")).expect("ours");
        let out = Command::new("veritysetup")
            .arg("format")
            .arg(&data)
            .arg(dir.join("theirs"))
            .arg(format!("--salt={}", hex(&SALT)))
            .arg(format!("--uuid={}", uuid_string(&UUID)))
            .output()
            .expect("veritysetup");
        assert!(out.status.success(), "{out:?}");
        let a = std::fs::read(dir.join("ours")).expect("ours");
        let b = std::fs::read(dir.join("theirs")).expect("theirs");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(a, b);
    }

    use std::process::Command;
}
