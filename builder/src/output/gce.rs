//! `gce`: the raw image as `disk.raw` in a gzip-compressed GNU sparse tar
//! (`<name>.tar.gz`), the archive Google Compute Engine imports.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use basalt_vdisk::{RawDisk, write_gce};

use crate::atomic::TempFile;
use crate::log;
use crate::manifest::{Artifact, Manifest};
use crate::profile::Profile;

/// gzip level: gzip's own default.
const LEVEL: u32 = 6;

pub fn write(
    profile: &Profile,
    raw: &Path,
    out: &Path,
    epoch: i64,
    manifest: &mut Manifest,
) -> Result<()> {
    let dest = out.join(format!("{}.tar.gz", profile.name));
    log::step(&format!("archiving {}", dest.display()));
    let disk = RawDisk::open(raw).context("opening the raw image")?;
    let (tmp, f) = TempFile::create(&dest)?;
    let w = write_gce(&disk, epoch, LEVEL, BufWriter::with_capacity(1 << 20, f))
        .context("writing the GCE archive")?;
    let mut w = w;
    w.flush().context("flushing the GCE archive")?;
    let f = w.into_inner().context("flushing the GCE archive")?;
    f.sync_all().context("syncing the GCE archive")?;
    drop(f);
    tmp.commit()?;
    manifest.artifacts.push(Artifact::of(&dest, "gce")?);
    Ok(())
}
