//! A one-member GNU tar archive holding a disk image as an old-GNU sparse
//! file (GNU tar manual, "Old GNU Format" / "GNU sparse files"): type 'S',
//! four map entries in the header and 21 in each extension block, then the
//! data of the mapped regions only. Holes cost nothing to store or read.
//! Owner, mode and time are fixed; the map is made by content (all-zero
//! blocks are holes), so equal disks give equal archives.

use std::io::Write;
use std::ops::Range;

use crate::error::{Result, VdiskError, io_err};
use crate::source::RawDisk;

pub const BLOCK: usize = 512;
/// Granularity of the sparse map.
pub const MAP_BLOCK: u64 = 4096;
/// GNU tar writes archives in records of 20 blocks.
pub const RECORD: u64 = 20 * BLOCK as u64;
/// `magic` + `version` of the old GNU format: "ustar  \0".
pub const OLDGNU_MAGIC: &[u8; 8] = b"ustar  \0";
pub const TYPE_SPARSE: u8 = b'S';
/// Map entries in the header and in each extension block.
pub const HEADER_SPARSE: usize = 4;
pub const EXT_SPARSE: usize = 21;
/// Header field offsets.
const OFF_SPARSE: usize = 386;
const OFF_ISEXTENDED: usize = 482;
const OFF_REALSIZE: usize = 483;
const OFF_EXT_ISEXTENDED: usize = 504;

/// Metadata of the archive member.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub mode: u32,
    pub mtime: i64,
}

/// Write a numeric field: octal with a NUL terminator when it fits, else
/// GNU base-256 (high bit of the first byte set, big-endian value).
fn num(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    if digits < 22 && v < 1u64 << (3 * digits) {
        let s = format!("{v:0digits$o}");
        field[..digits].copy_from_slice(s.as_bytes());
        field[digits] = 0;
    } else {
        field.iter_mut().for_each(|b| *b = 0);
        let n = field.len();
        field[n - 8..].copy_from_slice(&v.to_be_bytes());
        field[0] = 0x80;
    }
}

fn put_map(block: &mut [u8], at: usize, r: &Range<u64>) {
    num(&mut block[at..at + 12], r.start);
    num(&mut block[at + 12..at + 24], r.end - r.start);
}

/// The header and extension blocks for `map` (data ranges) of a file of `real` bytes.
fn headers(m: &Member, map: &[Range<u64>], real: u64) -> Result<Vec<u8>> {
    if m.name.is_empty() || m.name.len() > 99 || m.name.contains('\0') {
        return Err(VdiskError::BadOption(format!(
            "tar member name {:?} must be 1..=99 bytes without NUL",
            m.name
        )));
    }
    let mtime = u64::try_from(m.mtime)
        .map_err(|_| VdiskError::BadOption(format!("negative mtime {}", m.mtime)))?;
    let stored: u64 = map.iter().map(|r| r.end - r.start).sum();
    let mut h = [0u8; BLOCK];
    h[..m.name.len()].copy_from_slice(m.name.as_bytes());
    num(&mut h[100..108], u64::from(m.mode & 0o7777));
    num(&mut h[108..116], 0);
    num(&mut h[116..124], 0);
    num(&mut h[124..136], stored);
    num(&mut h[136..148], mtime);
    h[156] = TYPE_SPARSE;
    h[257..265].copy_from_slice(OLDGNU_MAGIC);
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    for (i, r) in map.iter().take(HEADER_SPARSE).enumerate() {
        put_map(&mut h, OFF_SPARSE + 24 * i, r);
    }
    h[OFF_ISEXTENDED] = u8::from(map.len() > HEADER_SPARSE);
    num(&mut h[OFF_REALSIZE..OFF_REALSIZE + 12], real);
    // Checksum: byte sum with the field itself read as spaces; six octal
    // digits, NUL, space.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());

    let mut out = h.to_vec();
    let rest = map.get(HEADER_SPARSE..).unwrap_or(&[]);
    let n_ext = rest.len().div_ceil(EXT_SPARSE);
    for (i, chunk) in rest.chunks(EXT_SPARSE).enumerate() {
        let mut e = [0u8; BLOCK];
        for (j, r) in chunk.iter().enumerate() {
            put_map(&mut e, 24 * j, r);
        }
        e[OFF_EXT_ISEXTENDED] = u8::from(i + 1 < n_ext);
        out.extend_from_slice(&e);
    }
    Ok(out)
}

/// The sparse map of `disk` by content, merged; a file ending in a hole
/// gets a final empty entry at its end, as GNU tar writes, so extraction
/// restores the full size.
pub fn sparse_map(disk: &RawDisk) -> Result<Vec<Range<u64>>> {
    let mut map: Vec<Range<u64>> = Vec::new();
    disk.for_each_nonzero(MAP_BLOCK, |off, b| {
        let end = off + b.len() as u64;
        match map.last_mut() {
            Some(last) if last.end == off => last.end = end,
            _ => map.push(off..end),
        }
        Ok(())
    })?;
    if map.last().is_none_or(|r| r.end < disk.len()) {
        map.push(disk.len()..disk.len());
    }
    Ok(map)
}

struct Counted<W: Write> {
    w: W,
    pos: u64,
}

impl<W: Write> Counted<W> {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b).map_err(io_err(format!(
            "writing the tar archive at byte {}",
            self.pos
        )))?;
        self.pos += b.len() as u64;
        Ok(())
    }
}

/// Write a tar archive holding `disk` as the sparse member `m` to `out`.
/// The disk is read twice: once for the map, once for the data.
pub fn write_sparse_tar<W: Write>(disk: &RawDisk, m: &Member, out: W) -> Result<W> {
    let map = sparse_map(disk)?;
    let head = headers(m, &map, disk.len())?;
    let mut o = Counted { w: out, pos: 0 };
    o.put(&head)?;
    let mut buf = vec![0u8; 1 << 20];
    for r in &map {
        let mut at = r.start;
        while at < r.end {
            let n = usize::try_from((r.end - at).min(buf.len() as u64)).unwrap_or(buf.len());
            disk.read_at(&mut buf[..n], at)?;
            o.put(&buf[..n])?;
            at += n as u64;
        }
    }
    // Pad the member to a block, add the two zero end blocks, pad to a record.
    let zeros = vec![0u8; RECORD as usize];
    let pad = (BLOCK as u64 - o.pos % BLOCK as u64) % BLOCK as u64;
    o.put(&zeros[..pad as usize])?;
    o.put(&zeros[..2 * BLOCK])?;
    let tail = (RECORD - o.pos % RECORD) % RECORD;
    o.put(&zeros[..tail as usize])?;
    let out = o.w;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields() {
        let cases: &[(usize, u64, &[u8])] = &[
            (8, 0o644, b"0000644\0"),
            (12, 0, b"00000000000\0"),
            (12, (1 << 33) - 1, b"77777777777\0"),
        ];
        for &(len, v, want) in cases {
            let mut f = vec![0xffu8; len];
            num(&mut f, v);
            assert_eq!(f, want, "{v}");
        }
        let mut f = [0u8; 12];
        num(&mut f, 1 << 33);
        assert_eq!(f[0], 0x80);
        assert_eq!(u64::from_be_bytes(f[4..].try_into().expect("8")), 1 << 33);
    }

    #[test]
    fn header_checksum_and_extension_chain() {
        let m = Member {
            name: "disk.raw".into(),
            mode: 0o644,
            mtime: 1_700_000_000,
        };
        let map: Vec<Range<u64>> = (0..30u64).map(|i| i * 8192..i * 8192 + 4096).collect();
        let h = headers(&m, &map, 1 << 20).expect("headers");
        // Header + ceil(26 / 21) extension blocks.
        assert_eq!(h.len(), 3 * BLOCK);
        assert_eq!(h[OFF_ISEXTENDED], 1);
        assert_eq!(h[BLOCK + OFF_EXT_ISEXTENDED], 1);
        assert_eq!(h[2 * BLOCK + OFF_EXT_ISEXTENDED], 0);
        let mut first = h[..BLOCK].to_vec();
        let stored = u32::from_str_radix(std::str::from_utf8(&first[148..154]).expect("utf8"), 8)
            .expect("octal");
        first[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, first.iter().map(|&b| u32::from(b)).sum::<u32>());
        for bad in ["", &"x".repeat(100)] {
            let m = Member {
                name: bad.to_string(),
                ..m.clone()
            };
            assert!(headers(&m, &map, 1 << 20).is_err());
        }
    }
}
