//! The input of every writer: a raw disk image and a map of where its data
//! may be. The map only speeds reading up (holes are skipped unread); what
//! counts as data is decided by content (all-zero blocks are zeros), so the
//! output does not depend on how the file system stored the raw image.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rustix::fs::{SeekFrom, seek};
use rustix::io::Errno;

use crate::error::{Result, VdiskError, io_err};

/// Bytes read from the raw image per call.
const READ_BATCH: u64 = 1 << 20;

/// A raw disk image with a map of the byte ranges that may hold data.
pub struct RawDisk {
    file: File,
    len: u64,
    extents: Vec<Range<u64>>,
}

impl RawDisk {
    /// Open a raw image; its data map comes from SEEK_DATA/SEEK_HOLE.
    pub fn open(path: &Path) -> Result<RawDisk> {
        let file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
        RawDisk::from_file(file)
    }

    /// A raw image from an open file; its data map comes from SEEK_DATA/SEEK_HOLE.
    pub fn from_file(file: File) -> Result<RawDisk> {
        let len = file
            .metadata()
            .map_err(io_err("reading the raw image's size"))?
            .len();
        let extents = data_extents(&file, len)?;
        RawDisk::with_extents(file, len, extents)
    }

    /// A raw image of `len` bytes whose data lies only inside `extents`
    /// (sorted, disjoint, within `len`); bytes outside them read as zeros.
    pub fn with_extents(file: File, len: u64, extents: Vec<Range<u64>>) -> Result<RawDisk> {
        if len == 0 {
            return Err(VdiskError::Empty);
        }
        if len % 512 != 0 {
            return Err(VdiskError::UnalignedSize(len));
        }
        let mut prev_end = 0;
        for r in &extents {
            if r.start < prev_end || r.end <= r.start || r.end > len {
                return Err(VdiskError::BadExtents(format!(
                    "{}..{} overlaps, is empty, is out of order or ends beyond the {len}-byte disk",
                    r.start, r.end
                )));
            }
            prev_end = r.end;
        }
        Ok(RawDisk { file, len, extents })
    }

    /// The disk's size in bytes (a multiple of 512).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always false: an empty disk is refused when the `RawDisk` is made.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(io_err(format!("reading the raw image at byte {offset}")))
    }

    /// Call `f(offset, bytes)`, in disk order, for every `block`-aligned
    /// block that holds a non-zero byte (the last block may be shorter
    /// than `block` when the disk size is not a multiple of it).
    pub fn for_each_nonzero(
        &self,
        block: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        if block == 0 || block % 512 != 0 || block > READ_BATCH || READ_BATCH % block != 0 {
            return Err(VdiskError::BadOption(format!(
                "block size {block} must be a multiple of 512 dividing {READ_BATCH}"
            )));
        }
        let mut buf = vec![0u8; usize::try_from(READ_BATCH).unwrap_or(1 << 20)];
        for r in self.block_ranges(block) {
            let mut pos = r.start;
            while pos < r.end {
                let n = (r.end - pos).min(READ_BATCH);
                let chunk = &mut buf[..usize::try_from(n).map_err(|_| too_big())?];
                self.read_at(chunk, pos)?;
                let step = usize::try_from(block).map_err(|_| too_big())?;
                for (i, b) in chunk.chunks(step).enumerate() {
                    if !is_zero(b) {
                        f(pos + block * u64::try_from(i).map_err(|_| too_big())?, b)?;
                    }
                }
                pos += n;
            }
        }
        Ok(())
    }

    /// The data extents widened to `block` boundaries (clamped to the
    /// disk's end) and merged.
    fn block_ranges(&self, block: u64) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        for r in &self.extents {
            let start = r.start / block * block;
            let end = r.end.div_ceil(block).saturating_mul(block).min(self.len);
            match out.last_mut() {
                Some(last) if last.end >= start => last.end = last.end.max(end),
                _ => out.push(start..end),
            }
        }
        out
    }
}

fn too_big() -> VdiskError {
    VdiskError::BadOption("size does not fit this platform's usize".into())
}

/// True if every byte of `b` is zero.
pub fn is_zero(b: &[u8]) -> bool {
    let (words, rest) = b.split_at(b.len() / 16 * 16);
    words
        .chunks_exact(16)
        .all(|w| u128::from_ne_bytes(w.try_into().unwrap_or([1; 16])) == 0)
        && rest.iter().all(|&x| x == 0)
}

/// Byte ranges of `f` (of length `len`) that may hold data, in order;
/// the whole file where the file system cannot tell.
#[allow(clippy::single_range_in_vec_init)] // one extent covering the file
fn data_extents(f: &File, len: u64) -> Result<Vec<Range<u64>>> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let start = match seek(f, SeekFrom::Data(pos)) {
            Ok(s) => s,
            Err(Errno::NXIO) => break,
            Err(Errno::INVAL) | Err(Errno::OPNOTSUPP) if pos == 0 => return Ok(vec![0..len]),
            Err(e) => return Err(io_err(format!("SEEK_DATA at byte {pos}"))(e.into())),
        };
        if start >= len {
            break;
        }
        let end = seek(f, SeekFrom::Hole(start))
            .map_err(|e| io_err(format!("SEEK_HOLE at byte {start}"))(e.into()))?
            .min(len);
        if end <= start {
            return Err(VdiskError::BadExtents(format!(
                "the raw image changed while reading: hole at {end} before data at {start}"
            )));
        }
        out.push(start..end);
        pos = end;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // extent lists of one range
mod tests {
    use super::*;
    use crate::testutil::sparse_file;

    #[test]
    fn nonzero_blocks_by_content_not_by_map() {
        // Written zeros count as zeros; data outside the declared extents is
        // not read at all.
        let (path, f) = sparse_file("src", 4 << 20, &[(0, &[0u8; 8192]), (70_000, b"x")]);
        let disk = RawDisk::from_file(f).expect("disk");
        let mut seen = Vec::new();
        disk.for_each_nonzero(65536, |off, b| {
            seen.push((off, b.len()));
            Ok(())
        })
        .expect("scan");
        assert_eq!(seen, vec![(65536, 65536)]);
        let f = File::open(&path).expect("reopen");
        let disk = RawDisk::with_extents(f, 4 << 20, vec![0..4096]).expect("disk");
        let mut n = 0;
        disk.for_each_nonzero(4096, |_, _| {
            n += 1;
            Ok(())
        })
        .expect("scan");
        assert_eq!(n, 0);
        std::fs::remove_file(&path).ok();
    }

    #[test]
    fn rejects_bad_inputs() {
        let cases: &[(u64, Vec<Range<u64>>, &str)] = &[
            (0, vec![], "empty"),
            (1000, vec![], "multiple of 512"),
            (4096, vec![0..5000], "beyond"),
            (4096, vec![1024..2048, 0..512], "out of order"),
            (4096, vec![10..10], "empty"),
        ];
        for (len, ext, want) in cases {
            let (path, f) = sparse_file("bad", 4096, &[]);
            let err = RawDisk::with_extents(f, *len, ext.clone())
                .err()
                .expect("must fail")
                .to_string();
            std::fs::remove_file(&path).ok();
            assert!(err.contains(want), "{len} {ext:?}: {err}");
        }
    }

    #[test]
    fn zero_test() {
        for (b, want) in [
            (vec![0u8; 0], true),
            (vec![0u8; 33], true),
            (vec![0, 0, 0, 1], false),
            ([vec![0u8; 32], vec![1]].concat(), false),
            ([vec![0u8; 17], vec![1], vec![0; 20]].concat(), false),
        ] {
            assert_eq!(is_zero(&b), want, "{b:?}");
        }
    }
}
