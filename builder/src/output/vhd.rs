//! `vhd`: the raw image as a fixed VHD (`<name>.vhd`), its size rounded up
//! to 1 MiB as Azure requires; sparse where the raw image is.

use std::path::Path;

use anyhow::{Context, Result};
use basalt_vdisk::{RawDisk, VhdOptions, write_vhd_fixed};

use crate::atomic::TempFile;
use crate::log;
use crate::manifest::{Artifact, Manifest};
use crate::profile::Profile;

pub fn write(
    profile: &Profile,
    raw: &Path,
    out: &Path,
    epoch: i64,
    manifest: &mut Manifest,
) -> Result<()> {
    let dest = out.join(format!("{}.vhd", profile.name));
    log::step(&format!("converting to {}", dest.display()));
    let disk = RawDisk::open(raw).context("opening the raw image")?;
    let opts = VhdOptions {
        unique_id: basalt_gpt::guid_from_seed(profile.disk.seed.as_bytes(), "vhd-unique-id").0,
        timestamp: epoch,
    };
    let (tmp, f) = TempFile::create(&dest)?;
    let stats = write_vhd_fixed(&disk, &opts, &f).context("writing the VHD image")?;
    f.sync_all().context("syncing the VHD image")?;
    drop(f);
    tmp.commit()?;
    log::detail(&format!(
        "vhd: {} virtual, {} of data",
        crate::profile::size::human(stats.virtual_size),
        crate::profile::size::human(stats.data_bytes)
    ));
    manifest.artifacts.push(Artifact::of(&dest, "vhd")?);
    Ok(())
}
