//! basalt-qcow2: qcow2 (version 3) images from raw disk images, written by
//! our own streaming writer: all-zero 64 KiB clusters stay unallocated,
//! holes of the raw file are skipped without reading them, and the output
//! is deterministic.
//!
//! Later: vmdk streamOptimized and fixed vhd writers belong here too.

// The workspace declares rust-version 1.85; `is_multiple_of` needs 1.87.
#![allow(clippy::manual_is_multiple_of)]

mod error;
mod extents;
mod header;
mod write;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

pub use error::{Qcow2Error, Result};
pub use header::{CLUSTER_SIZE, Header};
pub use write::{Qcow2Stats, write_qcow2};

use error::io_err;

/// Convert the raw image at `raw` into a qcow2 file at `out`, through a
/// temporary file in the same directory renamed into place at the end,
/// so a failure never leaves a partial `out`.
pub fn convert(raw: &Path, out: &Path) -> Result<Qcow2Stats> {
    let raw_f = File::open(raw).map_err(io_err(format!("opening {}", raw.display())))?;
    let mut tmp_name = out
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp: PathBuf = out.with_file_name(tmp_name);
    let result = (|| {
        let f = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
        let stats = write_qcow2(&raw_f, &f)?;
        // No fsync (qemu-img convert does not sync either): the rename
        // already keeps partial output invisible; durability across power
        // loss is the caller's choice and costs seconds per GiB.
        fs::rename(&tmp, out).map_err(io_err(format!(
            "renaming {} to {}",
            tmp.display(),
            out.display()
        )))?;
        Ok(stats)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
