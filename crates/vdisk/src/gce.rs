//! The Google Compute Engine image archive: a gzip-compressed GNU tar
//! holding the disk as `disk.raw` (the member name GCE requires).
//! Deterministic: the gzip header carries no time and no file name.

use std::io::Write;

use flate2::{Compression, GzBuilder};

use crate::error::{Result, io_err};
use crate::source::RawDisk;
use crate::tar::{Member, write_sparse_tar};

/// The member name GCE's image import requires.
pub const MEMBER: &str = "disk.raw";
/// gzip header OS byte 3: Unix.
const OS_UNIX: u8 = 3;

/// Write the `.tar.gz` for `disk` to `out`; `mtime` is the member's time
/// (SOURCE_DATE_EPOCH). Returns the writer after the gzip trailer.
pub fn write_gce<W: Write>(disk: &RawDisk, mtime: i64, level: u32, out: W) -> Result<W> {
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(OS_UNIX)
        .write(out, Compression::new(level.min(9)));
    let member = Member {
        name: MEMBER.into(),
        mode: 0o644,
        mtime,
    };
    let gz = write_sparse_tar(disk, &member, gz)?;
    gz.finish().map_err(io_err("finishing the gzip stream"))
}
