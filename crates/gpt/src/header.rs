//! The GPT header (UEFI specification, "GPT Header"), one 512-byte sector.
//!
//! Offsets: 0 signature "EFI PART", 8 revision, 12 header size (92),
//! 16 header CRC32, 20 reserved, 24 my LBA, 32 alternate LBA, 40 first
//! usable LBA, 48 last usable LBA, 56 disk GUID, 72 entry array LBA,
//! 80 number of entries, 84 entry size, 88 entry array CRC32.

use crate::crc32::crc32;
use crate::error::{GptError, Result};
use crate::guid::Guid;

pub const SECTOR: u64 = 512;
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Revision 1.0.
pub const REVISION: u32 = 0x0001_0000;
pub const HEADER_SIZE: u32 = 92;
/// Basalt writes the usual 128 entries of 128 bytes (32 sectors).
pub const NUM_ENTRIES: u32 = 128;
pub const ENTRY_ARRAY_SECTORS: u64 = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptHeader {
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Guid,
    pub entry_lba: u64,
    pub num_entries: u32,
    pub entry_size: u32,
    pub entries_crc32: u32,
}

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

impl GptHeader {
    /// The sector's bytes, header CRC filled in.
    pub fn encode(&self) -> [u8; SECTOR as usize] {
        let mut b = [0u8; SECTOR as usize];
        b[0..8].copy_from_slice(SIGNATURE);
        b[8..12].copy_from_slice(&REVISION.to_le_bytes());
        b[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        b[24..32].copy_from_slice(&self.my_lba.to_le_bytes());
        b[32..40].copy_from_slice(&self.alternate_lba.to_le_bytes());
        b[40..48].copy_from_slice(&self.first_usable_lba.to_le_bytes());
        b[48..56].copy_from_slice(&self.last_usable_lba.to_le_bytes());
        b[56..72].copy_from_slice(&self.disk_guid.to_disk());
        b[72..80].copy_from_slice(&self.entry_lba.to_le_bytes());
        b[80..84].copy_from_slice(&self.num_entries.to_le_bytes());
        b[84..88].copy_from_slice(&self.entry_size.to_le_bytes());
        b[88..92].copy_from_slice(&self.entries_crc32.to_le_bytes());
        let crc = crc32(&b[..HEADER_SIZE as usize]);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode and check signature, size and CRC of the header read from
    /// `lba` (`which` is "primary" or "backup", for messages).
    pub fn decode(b: &[u8; SECTOR as usize], lba: u64, which: &'static str) -> Result<GptHeader> {
        let bad = |why: String| GptError::BadHeader { which, lba, why };
        if &b[0..8] != SIGNATURE {
            return Err(bad("no \"EFI PART\" signature".into()));
        }
        let size = le32(b, 12);
        if !(HEADER_SIZE..=SECTOR as u32).contains(&size) {
            return Err(bad(format!(
                "header size {size} outside {HEADER_SIZE}..=512"
            )));
        }
        let mut copy = *b;
        copy[16..20].fill(0);
        let want = le32(b, 16);
        let got = crc32(&copy[..size as usize]);
        if want != got {
            return Err(bad(format!(
                "header CRC32 {want:#010x} stored, {got:#010x} computed"
            )));
        }
        let mut g = [0u8; 16];
        g.copy_from_slice(&b[56..72]);
        let h = GptHeader {
            my_lba: le64(b, 24),
            alternate_lba: le64(b, 32),
            first_usable_lba: le64(b, 40),
            last_usable_lba: le64(b, 48),
            disk_guid: Guid::from_disk(&g),
            entry_lba: le64(b, 72),
            num_entries: le32(b, 80),
            entry_size: le32(b, 84),
            entries_crc32: le32(b, 88),
        };
        if h.my_lba != lba {
            return Err(bad(format!("header says it is at LBA {}", h.my_lba)));
        }
        if h.entry_size < 128 || h.entry_size % 128 != 0 || h.entry_size > 4096 {
            return Err(bad(format!(
                "entry size {} is not a multiple of 128 up to 4096",
                h.entry_size
            )));
        }
        if h.num_entries == 0 || h.num_entries > 1024 {
            return Err(bad(format!(
                "{} entries (expected 1..=1024)",
                h.num_entries
            )));
        }
        if h.first_usable_lba > h.last_usable_lba {
            return Err(bad(format!(
                "first usable LBA {} after last usable {}",
                h.first_usable_lba, h.last_usable_lba
            )));
        }
        Ok(h)
    }

    /// Bytes of the entry array this header describes.
    pub fn entry_array_len(&self) -> u64 {
        u64::from(self.num_entries) * u64::from(self.entry_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> GptHeader {
        GptHeader {
            my_lba: 1,
            alternate_lba: 2047,
            first_usable_lba: 34,
            last_usable_lba: 2014,
            disk_guid: Guid::from_u128(0xaabb_ccdd_eeff_0011_2233_4455_6677_8899),
            entry_lba: 2,
            num_entries: 128,
            entry_size: 128,
            entries_crc32: 0x1234_5678,
        }
    }

    #[test]
    fn fields_table() {
        let b = sample().encode();
        let cases: &[(usize, &[u8])] = &[
            (0, b"EFI PART"),
            (8, &[0, 0, 1, 0]),
            (12, &[92, 0, 0, 0]),
            (20, &[0; 4]),
            (24, &[1, 0, 0, 0, 0, 0, 0, 0]),
            (32, &[0xff, 0x07, 0, 0, 0, 0, 0, 0]),
            (40, &[34, 0, 0, 0, 0, 0, 0, 0]),
            (48, &[0xde, 0x07, 0, 0, 0, 0, 0, 0]),
            (
                56,
                &[0xdd, 0xcc, 0xbb, 0xaa, 0xff, 0xee, 0x11, 0x00, 0x22, 0x33],
            ),
            (72, &[2, 0, 0, 0, 0, 0, 0, 0]),
            (80, &[128, 0, 0, 0, 128, 0, 0, 0, 0x78, 0x56, 0x34, 0x12]),
            (92, &[0; 420]),
        ];
        for (off, want) in cases {
            assert_eq!(&b[*off..*off + want.len()], *want, "offset {off}");
        }
    }

    #[test]
    fn decode_checks() {
        let h = sample();
        let b = h.encode();
        assert_eq!(GptHeader::decode(&b, 1, "primary").expect("decode"), h);
        let mut flipped = b;
        flipped[40] ^= 1;
        let cases: Vec<([u8; 512], u64, &str)> = vec![
            (flipped, 1, "CRC32"),
            (b, 5, "says it is at LBA 1"),
            ([0u8; 512], 1, "signature"),
        ];
        for (bytes, lba, needle) in cases {
            let err = GptHeader::decode(&bytes, lba, "primary")
                .expect_err("must fail")
                .to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
