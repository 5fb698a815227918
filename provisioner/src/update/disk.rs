//! The /usr slot partitions on the boot disk (a block device or, in tests,
//! an image file), found by GPT name and used as byte ranges of the disk.

use std::fs::File;
use std::ops::Range;
use std::path::Path;

use anyhow::{Context, Result, bail};
use basalt_gpt::SECTOR;

/// GPT partition name of slot `s` ('A' -> `USR-A`).
pub fn partition_name(s: char) -> String {
    format!("USR-{s}")
}

/// Byte range of slot `s`'s partition on the disk.
pub fn slot_range(disk: &mut File, disk_path: &Path, s: char) -> Result<Range<u64>> {
    let gpt = basalt_gpt::read_gpt(disk)
        .with_context(|| format!("reading the GPT of {}", disk_path.display()))?;
    let name = partition_name(s);
    let Some((_, e)) = gpt.by_name(&name) else {
        bail!("{}: no GPT partition named {name}", disk_path.display());
    };
    let start = e.first_lba.checked_mul(SECTOR);
    let end = e
        .last_lba
        .checked_add(1)
        .and_then(|l| l.checked_mul(SECTOR));
    match (start, end) {
        (Some(s), Some(t)) if s < t && t <= gpt.disk_size => Ok(s..t),
        _ => bail!(
            "{}: partition {name} (LBA {}..={}) does not lie on the disk",
            disk_path.display(),
            e.first_lba,
            e.last_lba
        ),
    }
}

/// Tells the kernel to drop cached pages of `range` so a read-back comes
/// from the device, not from what was just written (no-op for files that
/// do not support it).
pub fn drop_cache(f: &File, range: &Range<u64>) {
    let len = std::num::NonZeroU64::new(range.end - range.start);
    let _ = rustix::fs::fadvise(f, range.start, len, rustix::fs::Advice::DontNeed);
}
