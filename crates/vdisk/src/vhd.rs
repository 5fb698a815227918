//! Fixed VHD (Microsoft Virtual Hard Disk Image Format Specification,
//! version 1.0): the raw disk, its size rounded up to 1 MiB (Azure requires
//! it), followed by a 512-byte big-endian footer. Zero blocks are not
//! written, so the output stays as sparse as the input.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::{Result, VdiskError, io_err};
use crate::source::RawDisk;

pub const FOOTER_SIZE: u64 = 512;
/// Virtual size alignment Azure requires.
pub const ALIGN: u64 = 1 << 20;
pub const COOKIE: &[u8; 8] = b"conectix";
/// `Features`: bit 1 "reserved", which the spec says must always be set.
pub const FEATURES: u32 = 0x0000_0002;
pub const FILE_FORMAT_VERSION: u32 = 0x0001_0000;
/// `Data Offset` of a fixed disk: none.
pub const DATA_OFFSET_NONE: u64 = u64::MAX;
/// `Disk Type` 2: fixed hard disk.
pub const DISK_TYPE_FIXED: u32 = 2;
/// VHD timestamps count seconds from 2000-01-01 00:00:00 UTC.
pub const VHD_EPOCH_UNIX: i64 = 946_684_800;
pub const CREATOR_APP: &[u8; 4] = b"bslt";
pub const CREATOR_VERSION: u32 = 0x0001_0000;
/// `Creator Host OS`: "Wi2k", the value Windows-hosted tools write.
pub const CREATOR_HOST_OS: u32 = 0x5769_326b;
/// Copy granularity; all-zero blocks are skipped.
const BLOCK: u64 = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VhdOptions {
    /// `Unique Id` (derive it from the build seed).
    pub unique_id: [u8; 16],
    /// Creation time, Unix seconds (SOURCE_DATE_EPOCH); must be 2000..2136.
    pub timestamp: i64,
}

/// Cylinders, heads, sectors per track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chs {
    pub cylinders: u16,
    pub heads: u8,
    pub sectors: u8,
}

/// CHS geometry of a disk of `total_sectors`, by the spec's algorithm
/// (appendix "CHS Calculation").
pub fn geometry(total_sectors: u64) -> Chs {
    let total = total_sectors.min(65535 * 16 * 255);
    let (spt, heads, cth) = if total >= 65535 * 16 * 63 {
        (255u64, 16u64, total / 255)
    } else {
        let mut spt = 17u64;
        let mut cth = total / spt;
        let mut heads = cth.div_ceil(1024).max(4);
        if cth >= heads * 1024 || heads > 16 {
            spt = 31;
            heads = 16;
            cth = total / spt;
        }
        if cth >= heads * 1024 {
            spt = 63;
            heads = 16;
            cth = total / spt;
        }
        (spt, heads, cth)
    };
    Chs {
        // Bounded above by the clamp of `total`; the fallbacks cannot happen.
        cylinders: u16::try_from(cth / heads).unwrap_or(u16::MAX),
        heads: u8::try_from(heads).unwrap_or(16),
        sectors: u8::try_from(spt).unwrap_or(255),
    }
}

/// The footer of a fixed disk of `size` bytes.
pub fn footer(size: u64, opts: &VhdOptions) -> Result<[u8; 512]> {
    let stamp = opts
        .timestamp
        .checked_sub(VHD_EPOCH_UNIX)
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| {
            VdiskError::BadOption(format!(
                "timestamp {} is outside the VHD range (2000-01-01 to 2136)",
                opts.timestamp
            ))
        })?;
    let chs = geometry(size / 512);
    let mut b = [0u8; 512];
    b[0..8].copy_from_slice(COOKIE);
    b[8..12].copy_from_slice(&FEATURES.to_be_bytes());
    b[12..16].copy_from_slice(&FILE_FORMAT_VERSION.to_be_bytes());
    b[16..24].copy_from_slice(&DATA_OFFSET_NONE.to_be_bytes());
    b[24..28].copy_from_slice(&stamp.to_be_bytes());
    b[28..32].copy_from_slice(CREATOR_APP);
    b[32..36].copy_from_slice(&CREATOR_VERSION.to_be_bytes());
    b[36..40].copy_from_slice(&CREATOR_HOST_OS.to_be_bytes());
    b[40..48].copy_from_slice(&size.to_be_bytes()); // original size
    b[48..56].copy_from_slice(&size.to_be_bytes()); // current size
    b[56..58].copy_from_slice(&chs.cylinders.to_be_bytes());
    b[58] = chs.heads;
    b[59] = chs.sectors;
    b[60..64].copy_from_slice(&DISK_TYPE_FIXED.to_be_bytes());
    b[68..84].copy_from_slice(&opts.unique_id);
    // 84 saved state: 0; 85.. reserved zeros.
    let sum = checksum(&b);
    b[64..68].copy_from_slice(&sum.to_be_bytes());
    Ok(b)
}

/// One's complement of the byte sum of the footer, checksum field excluded.
pub fn checksum(footer: &[u8; 512]) -> u32 {
    let sum = footer
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |s, (_, &b)| s.wrapping_add(u32::from(b)));
    !sum
}

/// The VHD's virtual size for a raw disk of `len` bytes.
pub fn virtual_size(len: u64) -> Result<u64> {
    len.checked_next_multiple_of(ALIGN)
        .ok_or(VdiskError::TooLarge {
            format: "VHD",
            size: len,
            why: "size overflows",
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VhdStats {
    pub virtual_size: u64,
    pub data_bytes: u64,
}

/// Write `disk` as a fixed VHD into `out` (an empty file opened for
/// writing): its length is set first, then only non-zero blocks and the
/// footer are written.
pub fn write_vhd_fixed(disk: &RawDisk, opts: &VhdOptions, out: &File) -> Result<VhdStats> {
    let size = virtual_size(disk.len())?;
    let foot = footer(size, opts)?;
    out.set_len(size + FOOTER_SIZE)
        .map_err(io_err("sizing the VHD"))?;
    let mut data = 0u64;
    disk.for_each_nonzero(BLOCK, |off, b| {
        out.write_all_at(b, off)
            .map_err(io_err(format!("writing the VHD at byte {off}")))?;
        data += b.len() as u64;
        Ok(())
    })?;
    out.write_all_at(&foot, size)
        .map_err(io_err("writing the VHD footer"))?;
    Ok(VhdStats {
        virtual_size: size,
        data_bytes: data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chs_by_the_spec() {
        // (size, C, H, S): values worked through the spec's algorithm by hand.
        let cases: &[(u64, u16, u8, u8)] = &[
            (1 << 20, 30, 4, 17),        // 2048 sectors: 120/4
            (64 << 20, 963, 8, 17),      // 131072/17 = 7710, heads 8
            (6 << 30, 12483, 16, 63),    // 12582912/63 = 199728
            (128 << 30, 65535, 16, 255), // clamped
            (40 << 30, 20560, 16, 255),  // 83886080 >= 65535*16*63
        ];
        for &(size, c, h, s) in cases {
            let g = geometry(size / 512);
            assert_eq!(
                g,
                Chs {
                    cylinders: c,
                    heads: h,
                    sectors: s
                },
                "{size}"
            );
        }
    }

    #[test]
    fn footer_fields_and_checksum() {
        let o = VhdOptions {
            unique_id: [7; 16],
            timestamp: VHD_EPOCH_UNIX + 5,
        };
        let f = footer(3 << 20, &o).expect("footer");
        assert_eq!(&f[0..8], b"conectix");
        assert_eq!(u32::from_be_bytes(f[24..28].try_into().expect("4")), 5);
        assert_eq!(
            u64::from_be_bytes(f[48..56].try_into().expect("8")),
            3 << 20
        );
        assert_eq!(u32::from_be_bytes(f[60..64].try_into().expect("4")), 2);
        let stored = u32::from_be_bytes(f[64..68].try_into().expect("4"));
        let sum: u32 = f
            .iter()
            .enumerate()
            .filter(|(i, _)| !(64..68).contains(i))
            .map(|(_, &b)| u32::from(b))
            .sum();
        assert_eq!(stored, !sum);
        for bad in [0, VHD_EPOCH_UNIX - 1, VHD_EPOCH_UNIX + (1 << 32)] {
            let o = VhdOptions {
                unique_id: [0; 16],
                timestamp: bad,
            };
            assert!(footer(1 << 20, &o).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_round_up_to_mib() {
        for (len, want) in [
            (512, 1 << 20),
            (1 << 20, 1 << 20),
            ((1 << 20) + 512, 2 << 20),
        ] {
            assert_eq!(virtual_size(len).expect("size"), want);
        }
    }
}
