//! Where the data of a (sparse) file is: SEEK_DATA/SEEK_HOLE through
//! rustix's safe wrapper, falling back to "all of it" where the file
//! system does not support them.

use std::fs::File;
use std::ops::Range;

use rustix::fs::{SeekFrom, seek};
use rustix::io::Errno;

use crate::error::{Qcow2Error, Result};

/// Byte ranges of `f` (of length `len`) that may hold data, in order.
#[allow(clippy::single_range_in_vec_init)] // one extent covering the file, not a range of values
pub fn data_extents(f: &File, len: u64) -> Result<Vec<Range<u64>>> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let start = match seek(f, SeekFrom::Data(pos)) {
            Ok(s) => s,
            Err(Errno::NXIO) => break,
            Err(Errno::INVAL) | Err(Errno::OPNOTSUPP) if pos == 0 => return Ok(vec![0..len]),
            Err(e) => return Err(io(e, pos, "SEEK_DATA")),
        };
        if start >= len {
            break;
        }
        let end = match seek(f, SeekFrom::Hole(start)) {
            Ok(e) => e.min(len),
            Err(e) => return Err(io(e, start, "SEEK_HOLE")),
        };
        if end <= start {
            return Err(Qcow2Error::Changed(format!(
                "hole at {end} before data at {start}"
            )));
        }
        out.push(start..end);
        pos = end;
    }
    Ok(out)
}

fn io(e: Errno, at: u64, what: &str) -> Qcow2Error {
    Qcow2Error::Io {
        what: format!("{what} at byte {at} of the raw image"),
        source: e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn finds_data_in_sparse_file() {
        let path = std::env::temp_dir().join(format!("basalt-qcow2-ext-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("create");
        let len = 64 << 20;
        f.set_len(len).expect("size");
        f.write_all_at(&[1; 100], 8 << 20).expect("write");
        f.write_all_at(&[2; 100], 40 << 20).expect("write");
        let ext = data_extents(&f, len).expect("extents");
        std::fs::remove_file(&path).ok();
        // Every written byte is covered; on file systems without hole
        // support the whole file is one extent.
        for at in [8u64 << 20, 40 << 20] {
            assert!(
                ext.iter()
                    .any(|r| r.contains(&at) && r.contains(&(at + 99))),
                "{at} not covered by {ext:?}"
            );
        }
        let covered: u64 = ext.iter().map(|r| r.end - r.start).sum();
        assert!(covered <= len);
    }
}
