//! Entry 2: the default /usr tree written as ext4 by basalt-ext4's
//! `dir2ext4` example against `mke2fs -t ext4 -d` on the same directory and
//! image size.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};

use crate::report::{Entry, TargetOn};
use crate::run::{Cmd, Measured, median_of, timed};

/// mke2fs option sets tried in order: the plain command first; if the
/// journal does not fit in the image size ours needed, without a journal
/// (ours writes a read-only file system without one).
const MKE2FS_VARIANTS: [&[&str]; 2] = [&[], &["-O", "^has_journal"]];

fn mke2fs(src: &Path, img: &Path, size: u64, extra: &[&str], work: &Path) -> Result<Measured> {
    let f = File::create(img).with_context(|| format!("creating {}", img.display()))?;
    f.set_len(size)
        .with_context(|| format!("sizing {}", img.display()))?;
    drop(f);
    timed(
        &Cmd::new("mke2fs")
            .args(["-q", "-F", "-t", "ext4", "-E", "root_owner=0:0"])
            .args(extra.iter().copied())
            .arg("-d")
            .arg(src)
            .arg(img),
        work,
    )
}

pub fn bench(dir2ext4: &Path, tar: &Path, work: &Path, runs: usize) -> Result<Entry> {
    let tree = work.join("tree");
    if tree.exists() {
        std::fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))?;
    }
    std::fs::create_dir_all(&tree)?;
    eprintln!("bench: unpacking {} with GNU tar", tar.display());
    timed(
        &Cmd::new("tar")
            .args(["--numeric-owner", "-xf"])
            .arg(tar)
            .arg("-C")
            .arg(&tree),
        work,
    )?;
    let usr = tree.join("usr");
    let ours_img = work.join("usr-basalt.img");
    let ours = Cmd::new(dir2ext4).arg(&usr).arg(&ours_img);
    let (t_ours, m_ours) = median_of(runs, || timed(&ours, work))?;
    let size = std::fs::metadata(&ours_img)?.len();
    timed(&Cmd::new("e2fsck").arg("-fn").arg(&ours_img), work)
        .context("checking our image with e2fsck -fn")?;
    let theirs_img = work.join("usr-mke2fs.img");
    let mut variant = None;
    let mut failures = Vec::new();
    for extra in MKE2FS_VARIANTS {
        match mke2fs(&usr, &theirs_img, size, extra, work) {
            Ok(_) => {
                variant = Some(extra);
                break;
            }
            Err(e) => failures.push(format!(
                "mke2fs {extra:?}: {}",
                format!("{e:#}").lines().last().unwrap_or("")
            )),
        }
    }
    let (baseline, note) = match variant {
        Some(extra) => {
            let (t, m) = median_of(runs, || mke2fs(&usr, &theirs_img, size, extra, work))?;
            let how = if extra.is_empty() {
                "mke2fs -t ext4 -d".to_string()
            } else {
                format!(
                    "mke2fs -t ext4 {} -d (at this size the plain command failed: {})",
                    extra.join(" "),
                    failures.join("; ")
                )
            };
            (
                Some(t),
                format!(
                    "median of {runs}; image {size} B; baseline {how}; peak RSS ours {} MiB, mke2fs {} MiB",
                    m_ours.peak_rss_kib / 1024,
                    m.peak_rss_kib / 1024
                ),
            )
        }
        None => (None, format!("no baseline: {}", failures.join("; "))),
    };
    for p in [&ours_img, &theirs_img] {
        std::fs::remove_file(p).ok();
    }
    Ok(Entry::new(
        "ext4: default /usr tree, dir2ext4 (vs mke2fs -d)",
        Some(t_ours),
        "s",
    )
    .baseline(baseline)
    .target(TargetOn::Ratio, 1.0)
    .note(note))
}
