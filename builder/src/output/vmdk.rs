//! `vmdk`: the raw image as a VMDK streamOptimized disk (`<name>.vmdk`),
//! the format VMware and cloud image imports take.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use basalt_vdisk::{RawDisk, VmdkOptions, write_vmdk};

use crate::atomic::TempFile;
use crate::log;
use crate::manifest::{Artifact, Manifest};
use crate::profile::Profile;

/// zlib level of the grains: the default, as VMware's tools use.
const LEVEL: u32 = 6;

pub fn write(profile: &Profile, raw: &Path, out: &Path, manifest: &mut Manifest) -> Result<()> {
    let name = format!("{}.vmdk", profile.name);
    let dest = out.join(&name);
    log::step(&format!("converting to {}", dest.display()));
    let disk = RawDisk::open(raw).context("opening the raw image")?;
    let seed = basalt_gpt::guid_from_seed(profile.disk.seed.as_bytes(), "vmdk-cid").0;
    let opts = VmdkOptions {
        cid: u32::from_le_bytes([seed[0], seed[1], seed[2], seed[3]]),
        file_name: name,
        level: LEVEL,
    };
    let (tmp, f) = TempFile::create(&dest)?;
    let mut w = BufWriter::with_capacity(1 << 20, f);
    let stats = write_vmdk(&disk, &opts, &mut w).context("writing the VMDK image")?;
    w.flush().context("flushing the VMDK image")?;
    let f = w.into_inner().context("flushing the VMDK image")?;
    f.sync_all().context("syncing the VMDK image")?;
    drop(f);
    tmp.commit()?;
    log::detail(&format!(
        "vmdk: {} non-zero grains of 64 KiB",
        stats.grains_written
    ));
    manifest.artifacts.push(Artifact::of(&dest, "vmdk")?);
    Ok(())
}
